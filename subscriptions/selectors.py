"""What the layers above read about subscribers, as plain data, with a fixed number of
queries however many subscribers are asked for."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from subscriptions.models import Feedback, Subscription


@dataclass
class Reader:
    """What one subscriber follows and has told us, for ranking their papers."""

    id: int
    topics: list[tuple[int, str]] = field(default_factory=list)  # (topic id, query), in the order followed
    authors: list[str] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)  # example papers' ids: "more like these"
    # (paper id, 1 or -1, the topic whose section it was given in or None, when), oldest first
    votes: list[tuple[int, int, int | None, datetime]] = field(default_factory=list)


def readers(subscribers) -> dict[int, Reader]:
    """Each subscriber's topics and votes, in two queries (authors come with the objects)."""
    found = {
        s.id: Reader(id=s.id, authors=list(s.authors or []), examples=list(s.example_paper_ids or []))
        for s in subscribers
    }
    if not found:
        return {}
    for subscriber_id, topic_id, query in (
        Subscription.objects.filter(subscriber_id__in=list(found))
        .order_by("created_at", "id")
        .values_list("subscriber_id", "topic_id", "topic__query")
    ):
        found[subscriber_id].topics.append((topic_id, query))
    for subscriber_id, paper_id, vote, topic_id, created_at in (
        Feedback.objects.filter(subscriber_id__in=list(found))
        .order_by("created_at", "id")
        .values_list("subscriber_id", "paper_id", "vote", "topic_id", "created_at")
    ):
        reader = found[subscriber_id]
        reader.votes.append((paper_id, vote, topic_id, created_at))
    return found


def followed_topics(subscriber_ids) -> dict[int, dict[str, int]]:
    """Each subscriber's topics (query: id), in one query. Names and ids only, no model
    objects: the digest shows names and links votes to ids."""
    followed: dict[int, dict[str, int]] = defaultdict(dict)
    if subscriber_ids:
        for subscriber_id, topic_id, query in Subscription.objects.filter(
            subscriber_id__in=list(subscriber_ids)
        ).values_list("subscriber_id", "topic_id", "topic__query"):
            followed[subscriber_id][query] = topic_id
    return followed
