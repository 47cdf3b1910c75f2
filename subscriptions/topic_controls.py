"""A digest's topic controls: "less of this topic", "mute a word" in it, and "drop this
topic", each a POST from the topic's page (``topic_views``), signed by the reader's
manage link. They change what the next digest holds:

- less: a 👎 on each paper the section showed, in that section (votes are evidence
  for the ranking: papers like those sink for this topic, and fewer clear the
  strong-match cut);
- mute: the topic becomes ``topic -word`` (the query syntax's exclusion), for this
  reader only (topics are shared rows; they move to another one);
- drop: the reader stops following the topic (their last topic only if they follow an
  author: a digest needs something to follow; otherwise they are sent to unsubscribe).
"""

from __future__ import annotations

import re

from django.db import transaction

from papers.models import Paper
from subscriptions import services
from subscriptions.feedback import record_vote
from subscriptions.links import preferences_url
from subscriptions.models import Feedback, Subscriber, Subscription, Topic

MUTED_WORD_MAX = 40
_MUTABLE = re.compile(r"^[^\W_][\w\-.+#]*$", re.UNICODE)  # one word as a topic can exclude it


class TopicControlError(ValueError):
    """What the reader asked cannot be done; the message says why, in words."""


def controls_url(subscriber: Subscriber, topic_id: int, paper_ids=()) -> str:
    """The page of one topic's controls, from a digest's section (``paper_ids``: what the
    section showed, for "less of this topic")."""
    papers = ",".join(str(int(p)) for p in paper_ids)
    return f"{preferences_url(subscriber)}topic/{int(topic_id)}/" + (f"?papers={papers}" if papers else "")


def followed_topic(subscriber: Subscriber, topic_id: int) -> Topic:
    topic = Topic.objects.filter(id=topic_id, subscriptions__subscriber=subscriber).first()
    if topic is None:
        raise TopicControlError("You no longer follow this topic.")
    return topic


def less_of_topic(subscriber: Subscriber, topic_id: int, paper_ids) -> int:
    """👎 in this topic's section for each of ``paper_ids``; returns how many were recorded."""
    topic = followed_topic(subscriber, topic_id)
    ids = list(dict.fromkeys(int(p) for p in paper_ids))
    known = list(Paper.objects.filter(id__in=ids).values_list("id", flat=True))
    for paper_id in known:
        record_vote(subscriber_id=subscriber.id, paper_id=paper_id, vote=Feedback.Vote.DOWN, topic_id=topic.id)
    return len(known)


def mute_word(subscriber: Subscriber, topic_id: int, word: str) -> str:
    """Follow ``topic -word`` instead of the topic; returns the new topic."""
    topic = followed_topic(subscriber, topic_id)
    word = " ".join((word or "").split()).strip().lower()
    if not word or len(word) > MUTED_WORD_MAX or not _MUTABLE.match(word):
        raise TopicControlError("Type one word to mute, like “starcraft” (letters and digits, no spaces).")
    muted = services.normalise_topic(f"{topic.query} -{word}")
    problem = services.topic_errors([muted])
    if problem:
        raise TopicControlError(" ".join(problem))
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(id=subscriber.id)
        queries = [muted if q == topic.query else q for q in _followed(subscriber)]
        services._set_topics(subscriber, list(dict.fromkeys(queries)))
    return muted


def drop_topic(subscriber: Subscriber, topic_id: int) -> str:
    """Stop following the topic; returns it."""
    topic = followed_topic(subscriber, topic_id)
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(id=subscriber.id)
        queries = [q for q in _followed(subscriber) if q != topic.query]
        if not queries and not subscriber.authors:
            raise TopicControlError(
                "This is the only thing you follow. Add another topic first, or unsubscribe to stop all email."
            )
        services._set_topics(subscriber, queries)
    return topic.query


def _followed(subscriber: Subscriber) -> list[str]:
    return list(
        Subscription.objects.filter(subscriber=subscriber)
        .order_by("created_at", "id")
        .values_list("topic__query", flat=True)
    )
