"""The emails subscriptions sends a person about their subscription (the tasks send them)."""

from __future__ import annotations

import emails
from subscriptions.links import confirm_url, preferences_url, unsubscribe_url
from subscriptions.models import Subscriber


def send_confirmation_email(subscriber: Subscriber) -> None:
    rendered = emails.render(
        "confirm",
        {
            "confirm_url": confirm_url(subscriber),
            "topics": [t.query for t in subscriber.topics.all()],
            "authors": subscriber.authors,
            "schedule": describe_schedule(subscriber),
            "expires_days": 7,
        },
    )
    emails.build_message(rendered, to=subscriber.email).send()


def send_manage_email(subscriber: Subscriber, *, asked_for_link: bool = False) -> None:
    """The manage link, after a signup of a known address or a "Lost your link?" request."""
    rendered = emails.render(
        "manage",
        {
            "asked_for_link": asked_for_link,
            "subscribed": subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED),
            "preferences_url": preferences_url(subscriber),
            "unsubscribe_url": unsubscribe_url(subscriber),
            "topics": [t.query for t in subscriber.topics.all()],
            "authors": subscriber.authors,
            "schedule": describe_schedule(subscriber),
            "paused": subscriber.status == Subscriber.Status.PAUSED,
        },
    )
    emails.build_message(rendered, to=subscriber.email).send()


WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def describe_schedule(subscriber: Subscriber) -> str:
    """ "every Monday morning (Europe/Berlin)" — for emails and pages."""
    when = (
        "every day" if subscriber.frequency == Subscriber.Frequency.DAILY else f"every {WEEKDAYS[subscriber.weekday]}"
    )
    return f"{when} around {subscriber.send_hour:02d}:00 ({subscriber.timezone})"
