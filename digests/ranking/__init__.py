"""Matching and ranking papers for topics and subscribers.

Public API (stable; the internals behind it may change):

- ``rank_topics(queries, *, since=None, limit=10, authors=(), exclude_paper_ids=())``
  ranks the papers in the database for a list of topic queries, as the digest does
  for a new subscriber, and returns ``RankedPaper`` items, best first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from papers.models import Paper

_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class RankedPaper:
    paper: Paper
    score: float
    topic: str | None = None
    why: str = ""
    matched_terms: list[str] = field(default_factory=list)


def _terms(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def rank_topics(queries, *, since=None, limit=10, authors=(), exclude_paper_ids=()) -> list[RankedPaper]:
    """First version: word overlap between each query and title + abstract."""
    papers = Paper.objects.all()
    if since is not None:
        papers = papers.filter(first_seen_at__gte=since)
    if exclude_paper_ids:
        papers = papers.exclude(id__in=list(exclude_paper_ids))
    best: dict[int, RankedPaper] = {}
    for paper in papers.only("id", "title", "abstract", "authors", "upvotes", "page_url", "abs_url", "pdf_url"):
        title_terms, body_terms = _terms(paper.title), _terms(paper.abstract)
        for query in queries:
            wanted = _terms(query)
            if not wanted:
                continue
            hits = sorted(wanted & (title_terms | body_terms))
            score = (2 * len(wanted & title_terms) + len(wanted & body_terms)) / (3 * len(wanted))
            if score >= 0.34 and (paper.id not in best or best[paper.id].score < score):
                best[paper.id] = RankedPaper(paper, score, query, f"{query}: {', '.join(hits)}", hits)
    ranked = sorted(best.values(), key=lambda r: (-r.score, -r.paper.upvotes))
    return ranked[:limit]


def rank_for_subscribers(subscribers, *, since=None, limit=None) -> dict[int, list[RankedPaper]]:
    """Each subscriber's digest papers, best first: the union of their topics, followed
    authors' papers first, no paper sent to them before, at most ``limit``
    (``settings.DIGEST_MAX_PAPERS`` by default). Empty list: nothing relevant, send nothing.

    First version: one ``rank_topics`` call per subscriber.
    """
    from django.conf import settings

    from digests.models import Delivery

    limit = limit or settings.DIGEST_MAX_PAPERS
    result = {}
    for subscriber in subscribers:
        sent = set()
        for ids in Delivery.objects.filter(subscriber=subscriber, status=Delivery.Status.SENT).values_list(
            "paper_ids", flat=True
        ):
            sent.update(ids)
        queries = [t.query for t in subscriber.topics.all()]
        result[subscriber.id] = rank_topics(
            queries, since=since, limit=limit, authors=subscriber.authors, exclude_paper_ids=sent
        )
    return result


def rank_papers_for(subscriber, *, since=None, limit=None) -> list[RankedPaper]:
    return rank_for_subscribers([subscriber], since=since, limit=limit)[subscriber.id]


def embed_papers(papers) -> None:
    """Compute and store sentence embeddings for new or changed papers (called by the
    importers inside the import transaction). The semantic extra fills this in; without
    it ranking is lexical and this does nothing."""
    return None
