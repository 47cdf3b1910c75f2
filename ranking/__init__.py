"""Matching and ranking papers for topics and subscribers.

Public API (stable; the internals behind it may change):

- ``rank_topics(queries, *, since=None, limit=10, authors=(), exclude_paper_ids=())``
  ranks the papers in the database for a list of topic queries, as the digest does
  for a new subscriber, and returns ``RankedPaper`` items, best first.
- ``rank_for_subscribers(subscribers, *, since=None, limit=None)`` does it for a batch
  of subscribers with a fixed number of queries, whatever the batch size.
- ``rank_papers_for(subscriber, ...)``: one subscriber.
- ``embed_papers(papers)``: importers call it with new or changed papers.
- ``embed_topics(topic_ids)``: a task runs it for topics made at signup, so that the
  issue's ranking finds every embedding stored.
- ``search_papers(text, *, limit, start, end)`` and ``similar_papers(paper)``: the public site's
  search and "similar papers" (``ranking.search``: full-text candidates on PostgreSQL,
  reranked by the same hybrid ranker).

How: each distinct topic is scored once against every paper (BM25F over title and
abstract, fused with sentence-embedding similarity when the semantic extra is
installed; see ``fusion``), weak matches fall under a floor, upvotes reorder what is
left, followed authors come first and feedback moves each subscriber's ranking.
"""

from __future__ import annotations

from ranking import semantic
from ranking.ranker import RankedPaper, Request, TopicRef, parsed, rank_requests, topic_vectors
from ranking.search import SearchResult, similar_papers
from ranking.search import search as search_papers
from ranking.semantic import embed_papers as _embed_papers

__all__ = [
    "RankedPaper",
    "SearchResult",
    "embed_papers",
    "embed_topics",
    "rank_for_subscribers",
    "rank_papers_for",
    "rank_topics",
    "search_papers",
    "similar_papers",
]


def rank_topics(queries, *, since=None, limit=10, authors=(), exclude_paper_ids=()) -> list[RankedPaper]:
    """Papers for these topic queries, best first: what a new subscriber with these
    topics and followed ``authors`` would get (the signup preview and ``rank_papers``)."""
    topics = [TopicRef(query=q.strip()) for q in dict.fromkeys(queries) if q and q.strip()]
    request = Request(key=None, topics=topics, authors=list(authors), exclude_ids=set(exclude_paper_ids))
    return rank_requests([request], since=since, limit=limit)[None]


def rank_for_subscribers(subscribers, *, since=None, limit=None) -> dict[int, list[RankedPaper]]:
    """Each subscriber's digest papers, best first: the union of their topics, followed
    authors' papers first, no paper sent to them before, feedback applied, at most
    ``limit`` (``settings.DIGEST_MAX_PAPERS`` by default). An empty list means nothing
    relevant: send nothing.

    Four queries whatever the batch size (topics, sent papers, feedback, the papers
    returned) plus the paper index's one (two when it is rebuilt), and one more each
    when feedback names papers outside the index or topics lack stored embeddings.
    """
    from django.conf import settings

    from digests.models import Delivery
    from subscriptions.models import Feedback, Subscription

    subscribers = list(subscribers)
    if not subscribers:
        return {}
    ids = [s.id for s in subscribers]
    limit = limit or settings.DIGEST_MAX_PAPERS

    topics: dict[int, list[TopicRef]] = {i: [] for i in ids}
    for subscriber_id, topic_id, query, embedding in (
        Subscription.objects.filter(subscriber_id__in=ids)
        .order_by("created_at", "id")
        .values_list("subscriber_id", "topic_id", "topic__query", "topic__embedding")
    ):
        topics[subscriber_id].append(TopicRef(query=query, id=topic_id, embedding=embedding))

    sent: dict[int, set[int]] = {i: set() for i in ids}
    for subscriber_id, paper_ids in Delivery.objects.filter(
        subscriber_id__in=ids, status=Delivery.Status.SENT
    ).values_list("subscriber_id", "paper_ids"):
        sent[subscriber_id].update(int(p) for p in paper_ids or ())

    liked: dict[int, list[int]] = {i: [] for i in ids}
    disliked: dict[int, list[int]] = {i: [] for i in ids}
    for subscriber_id, paper_id, vote in Feedback.objects.filter(subscriber_id__in=ids).values_list(
        "subscriber_id", "paper_id", "vote"
    ):
        (liked if vote > 0 else disliked)[subscriber_id].append(paper_id)

    requests = [
        Request(
            key=s.id,
            topics=topics[s.id],
            authors=list(s.authors or []),
            exclude_ids=sent[s.id],
            liked_ids=liked[s.id],
            disliked_ids=disliked[s.id],
        )
        for s in subscribers
    ]
    return rank_requests(requests, since=since, limit=limit)


def rank_papers_for(subscriber, *, since=None, limit=None) -> list[RankedPaper]:
    return rank_for_subscribers([subscriber], since=since, limit=limit)[subscriber.id]


def embed_papers(papers) -> None:
    """Compute and store sentence embeddings for new or changed papers (called by the
    importers inside the import transaction). Without the semantic extra it does
    nothing (and says so once in the log): ranking is then lexical."""
    _embed_papers(papers)


def embed_topics(topic_ids) -> int:
    """Compute and store the sentence embeddings of these topics where none is stored;
    returns how many. Done when a topic is made (signup, preferences), so that ranking
    an issue never waits for the encoder. Without the semantic extra it does nothing."""
    from subscriptions.models import Topic

    if not semantic.is_available():
        return 0
    rows = list(Topic.objects.filter(id__in=list(topic_ids), embedding__isnull=True).values_list("id", "query"))
    refs = [TopicRef(query=query, id=topic_id) for topic_id, query in rows]
    topic_vectors(refs, [parsed(ref.query) for ref in refs])  # stores what it computes
    return len(refs)
