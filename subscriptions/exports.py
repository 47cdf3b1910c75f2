"""Subscribers out: the operators' CSV of every subscriber, and a person's own data.

The CSV's first columns are the import's (``subscriptions.imports``), so an exported
file can be imported elsewhere as it is. Rows are read in keyset pages of
``EXPORT_PAGE`` with their topics: two queries per page, whatever the list's size.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone as dj_timezone

from subscriptions.imports import TOPIC_SEPARATOR
from subscriptions.models import Feedback, Subscriber, Subscription
from subscriptions.signals import personal_data_requested

EXPORT_PAGE = 2000
SUBSCRIBER_COLUMNS = [
    "email",
    "topics",
    "frequency",
    "timezone",
    "status",
    "weekday",
    "send_hour",
    "authors",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "suppressed_at",
    "suppression_reason",
]
_FIELDS = [name for name in SUBSCRIBER_COLUMNS if name not in ("topics", "authors")]


def _cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def subscriber_rows(*, status: str | None = None, page: int = EXPORT_PAGE) -> Iterator[list[str]]:
    """The header, then one row per subscriber (oldest first), optionally of one status."""
    yield SUBSCRIBER_COLUMNS
    subscribers = Subscriber.objects.order_by("id")
    if status:
        subscribers = subscribers.filter(status=status)
    after = 0
    while True:
        chunk = list(subscribers.filter(id__gt=after).values("id", "authors", *_FIELDS)[:page])
        if not chunk:
            return
        topics: dict[int, list[str]] = {}
        for subscriber_id, query in (
            Subscription.objects.filter(subscriber_id__in=[row["id"] for row in chunk])
            .order_by("subscriber_id", "id")
            .values_list("subscriber_id", "topic__query")
        ):
            topics.setdefault(subscriber_id, []).append(query)
        for row in chunk:
            values = {
                **row,
                "topics": f"{TOPIC_SEPARATOR} ".join(topics.get(row["id"], [])),
                "authors": f"{TOPIC_SEPARATOR} ".join(row["authors"] or []),
            }
            yield [_cell(values[name]) for name in SUBSCRIBER_COLUMNS]
        after = chunk[-1]["id"]


def personal_data(subscriber: Subscriber) -> dict:
    """Everything kept about one person, for their own download (GDPR art. 15 and 20)."""
    data = {
        "exported_at": dj_timezone.now().isoformat(),
        "subscriber": {name: _cell(getattr(subscriber, name)) or None for name in _FIELDS},
        "authors": list(subscriber.authors or []),
        "topics": [
            {"query": query, "since": _cell(since)}
            for query, since in subscriber.subscriptions.order_by("id").values_list("topic__query", "created_at")
        ],
        "feedback": [
            {"paper": key, "title": title, "vote": "up" if vote > 0 else "down", "at": _cell(at)}
            for key, title, vote, at in Feedback.objects.filter(subscriber=subscriber)
            .order_by("created_at", "id")
            .values_list("paper__key", "paper__title", "vote", "created_at")
        ],
    }
    personal_data_requested.send(sender=Subscriber, subscriber=subscriber, data=data)
    return data
