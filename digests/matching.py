"""Which papers each reader's copy carries: what subscriptions knows of the readers and
what digests has sent them, given to the ranking as plain data."""

from __future__ import annotations

from django.conf import settings

from digests.models import Delivery
from ranking.api import RankedPaper, Request, TopicRef, Vote, rank_requests
from subscriptions import selectors


def rank_for_subscribers(subscribers, *, since=None, limit=None) -> dict[int, list[RankedPaper]]:
    """Each subscriber's digest papers, best first: the union of their topics, followed
    authors' papers first, no paper sent to them before (nor the same paper under
    another key), their votes weighed as evidence in the topic section they were given
    in, at most ``limit`` (``settings.DIGEST_MAX_PAPERS`` by default). An empty list
    means nothing relevant: send nothing.

    Three queries whatever the batch size (topics, feedback, sent papers) plus the
    ranking's own.
    """
    subscribers = list(subscribers)
    if not subscribers:
        return {}
    readers = selectors.readers(subscribers)
    sent = sent_paper_ids(readers)
    requests = [
        Request(
            key=reader.id,
            topics=[TopicRef(query=query, id=topic_id) for topic_id, query in reader.topics],
            authors=reader.authors,
            exclude_ids=sent[reader.id],
            votes=[Vote(paper_id, vote, topic_id, at) for paper_id, vote, topic_id, at in reader.votes],
            example_paper_ids=reader.examples,
        )
        for reader in readers.values()
    ]
    return rank_requests(requests, since=since, limit=limit or settings.DIGEST_MAX_PAPERS)


def rank_papers_for(subscriber, *, since=None, limit=None) -> list[RankedPaper]:
    return rank_for_subscribers([subscriber], since=since, limit=limit)[subscriber.id]


def sent_paper_ids(subscriber_ids) -> dict[int, set[int]]:
    """The papers each subscriber has been sent, in one query."""
    sent: dict[int, set[int]] = {i: set() for i in subscriber_ids}
    for subscriber_id, paper_ids in Delivery.objects.filter(
        subscriber_id__in=list(sent), status=Delivery.Status.SENT
    ).values_list("subscriber_id", "paper_ids"):
        sent[subscriber_id].update(int(p) for p in paper_ids or ())
    return sent
