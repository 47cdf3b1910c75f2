"""Search over the whole store with the topic query syntax, ranked by the digests' hybrid ranker.

A search is ranked exactly as a topic is (``ranker.score_topics``: BM25F fused with
sentence embeddings, pseudo-relevance feedback, the query syntax's filters, the
relevance floor, then the small upvote prior), but over which papers depends on the
database:

- **PostgreSQL**: full-text search picks the candidates (``SearchVector`` over title and
  abstract, served by the GIN index of ``pages/migrations``): the ``CANDIDATES`` best by
  ``ts_rank_cd`` among the newest ``MAX_MATCHES`` papers that have any word of the query.
  Only those are loaded, indexed (``index.index_papers``) and ranked, so a web process
  never holds every paper; a query is a few milliseconds of SQL and a few hundred papers
  of Python whatever the size of the store.
- **elsewhere** (SQLite, the embedded default): the in-memory paper index the digests
  use (``index.get_index``), built once per process and kept while the papers do not change.

On the smaller candidate set BM25's idf is computed over the candidates, not the whole
store (``bench/ranking_quality.py --search`` measures what that costs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.db import connection

from ranking import fusion, semantic
from ranking.fusion import floor_for, trending_prior
from ranking.index import PaperIndex, get_index, index_papers
from ranking.query import ParsedQuery, parse_query
from ranking.ranker import RankedPaper, TopicRef, matched_words, score_topics

CANDIDATES = 300  # papers reranked per query on PostgreSQL
MAX_MATCHES = 5_000  # full-text matches ts_rank_cd is computed for (the newest), bounding a common word's cost
MAX_QUERY_LENGTH = 300
_DISPLAY_FIELDS = ("id", "title", "abstract", "authors", "categories", "first_seen_at", "published_at", "upvotes")
_INDEX_FIELDS = ("id", "title", "abstract", "authors", "categories", "first_seen_at", "upvotes")


@dataclass
class SearchResult:
    query: ParsedQuery
    papers: list[RankedPaper] = field(default_factory=list)
    total: int = 0  # papers above the relevance floor (of the candidates, on PostgreSQL)
    seconds: float = 0.0


def uses_full_text() -> bool:
    """Whether candidates come from PostgreSQL's full-text search (else the in-memory index)."""
    return connection.vendor == "postgresql"


def search(text: str, *, limit: int = 20, start: datetime | None = None, end: datetime | None = None) -> SearchResult:
    """The papers matching ``text`` (topic syntax), best first, at most ``limit``; only papers
    first seen in [``start``, ``end``) when given. An empty query finds nothing.

    Queries: on PostgreSQL two (candidates, then the shown papers' display fields are
    already in them: one) plus the query embedding's cache; elsewhere the paper index's
    one (two when it is rebuilt) and one for the shown papers."""
    started = time.perf_counter()
    query = parse_query((text or "")[:MAX_QUERY_LENGTH])
    result = SearchResult(query=query)
    if query.is_empty:
        return result
    if uses_full_text():
        papers = _full_text_candidates(query, start, end)
        index = index_papers(papers, use_semantic=semantic.is_available())
        allowed = None
        by_id = {p.id: p for p in papers}
    else:
        index = get_index(None)
        allowed = _in_period(index, start, end)
        by_id = None
    rows, scores = rank_index(index, query, allowed=allowed)
    result.total = len(rows)
    rows, scores = rows[:limit], scores[:limit]
    if by_id is None:
        by_id = index.papers([int(index.ids[row]) for row in rows])
    for row, score in zip(rows, scores, strict=True):
        paper = by_id[int(index.ids[row])]
        words = matched_words(index, query, int(row), f"{paper.title}. {paper.abstract or ''}")
        result.papers.append(RankedPaper(paper, float(score), query.text, ", ".join(words), words))
    result.seconds = time.perf_counter() - started
    return result


def rank_index(index: PaperIndex, query: ParsedQuery, *, allowed: np.ndarray | None = None):
    """(rows, scores) of ``index`` for one query, best first: the fused relevance must clear
    the digest's floor; upvotes then reorder with the digest's trending prior; the newest first
    among equals (a filter-only query, ``author:``, ``cat:``)."""
    if not index.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    config = fusion.DEFAULT
    relevance = score_topics(index, [TopicRef(query=query.text)], config).relevance[0]
    eligible = relevance >= floor_for(index.embeddings is not None, config)
    if allowed is not None:
        eligible &= allowed
    rows = np.flatnonzero(eligible)
    upvotes = index.upvotes if index.upvotes is not None else np.zeros(index.size)
    scores = relevance[rows] + config.trending_weight * trending_prior(upvotes)[rows]
    order = np.lexsort((-index.first_seen[rows], -scores))
    return rows[order], scores[order]


def _in_period(index: PaperIndex, start, end) -> np.ndarray | None:
    if start is None and end is None:
        return None
    allowed = np.ones(index.size, dtype=bool)
    if start is not None:
        allowed &= index.first_seen >= start.timestamp()
    if end is not None:
        allowed &= index.first_seen < end.timestamp()
    return allowed


# -- PostgreSQL candidates ---------------------------------------------------------------


def search_vector():
    """The expression the GIN index is built on (``pages/migrations``): a query must use the
    same one for PostgreSQL to use the index."""
    from django.contrib.postgres.search import SearchVector

    return SearchVector("title", "abstract", config="english")


def full_text_query(query: ParsedQuery):
    """Any of the query's words and phrases (OR): the ranker, not the full-text match, decides
    what is relevant; an excluded word is left to the ranker too. None when it has no words."""
    from django.contrib.postgres.search import SearchQuery

    parts = [SearchQuery(text, config="english", search_type="plain") for text in (*query.words, *query.phrases)]
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined |= part
    return combined


def _full_text_candidates(query: ParsedQuery, start, end) -> list:
    """The papers to rerank, with what ranking needs (embeddings when semantic) in one query."""
    from django.contrib.postgres.search import SearchRank

    from papers.models import Paper

    papers = Paper.objects.all()
    if start is not None:
        papers = papers.filter(first_seen_at__gte=start)
    if end is not None:
        papers = papers.filter(first_seen_at__lt=end)
    if query.authors:
        papers = papers.filter(_any_author(query.authors))
    if query.categories:
        papers = papers.filter(_any_category(query.categories))
    fields = [*_DISPLAY_FIELDS, "abs_url", "pdf_url", "page_url", "arxiv_id"]
    if semantic.is_available():
        fields += ["embedding", "embedding_model"]
    tsquery = full_text_query(query)
    if tsquery is None:  # only author:/cat: filters: the newest papers that pass them
        return list(papers.order_by("-first_seen_at").only(*fields)[:CANDIDATES])
    vector = search_vector()
    matches = papers.annotate(document=vector).filter(document=tsquery).order_by("-first_seen_at")
    newest = matches.values("id")[:MAX_MATCHES]
    ranked = (
        Paper.objects.filter(id__in=newest)
        .annotate(rank=SearchRank(vector, tsquery, cover_density=True))
        .order_by("-rank", "-first_seen_at")
        .only(*fields)[:CANDIDATES]
    )
    return list(ranked)


def _any_author(names):
    from django.db.models import Q

    condition = Q()
    for name in names:
        words = Q()
        for word in name.split():
            words &= Q(authors__icontains=word)
        condition |= words
    return condition


def _any_category(categories):
    from django.db.models import Q

    condition = Q()
    for category in categories:
        condition |= Q(categories__icontains=category)
    return condition


# -- similar papers ---------------------------------------------------------------------

SIMILAR_MIN = 0.05  # on the 0..1 paper-to-paper scale: below it, unrelated


def similar_papers(paper, *, limit: int = 6) -> list:
    """Papers closest to ``paper`` (a ``Paper`` with title, abstract and embedding loaded):
    nearest neighbours by sentence embedding, or by tf-idf cosine without the semantic model.

    On PostgreSQL the neighbours are looked for among the full-text candidates of the paper's
    title words (one query); elsewhere among every paper of the in-memory index."""
    from ranking.lexical import STOPWORDS, words

    if uses_full_text():
        title_words = tuple(dict.fromkeys(w for w in words(paper.title) if w not in STOPWORDS))
        probe = ParsedQuery(text=paper.title, words=title_words)
        candidates = [p for p in _full_text_candidates(probe, None, None) if p.id != paper.id]
        if not candidates:
            return []
        if semantic.is_available():
            vectors = [_vector(p) for p in candidates]
            keep = [i for i, v in enumerate(vectors) if v is not None]
            candidates = [candidates[i] for i in keep]
            matrix = np.stack([vectors[i] for i in keep]) if keep else np.zeros((0, semantic.DIMENSIONS))
            closeness = fusion.paper_scale(matrix @ _vector(paper, compute=True)) if keep else np.zeros(0)
        else:
            index = index_papers(candidates, use_semantic=False)
            closeness = _lexical_closeness(index, paper)
    else:
        index = get_index(None)
        if index.embeddings is not None:
            closeness = fusion.paper_scale(index.embeddings @ _vector(paper, compute=True))
        else:
            closeness = _lexical_closeness(index, paper)
        shown = [int(i) for i in _best(closeness, index.ids, paper.id, limit)]
        found = index.papers(shown)
        return [found[i] for i in shown if i in found]
    ids = np.array([p.id for p in candidates], dtype=np.int64)
    by_id = {p.id: p for p in candidates}
    return [by_id[int(i)] for i in _best(closeness, ids, paper.id, limit)]


def _best(closeness: np.ndarray, ids: np.ndarray, own_id: int, limit: int) -> list[int]:
    order = np.argsort(-closeness, kind="stable")
    chosen = [int(ids[row]) for row in order if closeness[row] >= SIMILAR_MIN and int(ids[row]) != own_id]
    return chosen[:limit]


def _vector(paper, *, compute: bool = False):
    vector = semantic.from_bytes(paper.embedding) if semantic.is_current(paper) else None
    if vector is None and compute:
        vector = semantic.embed_paper_texts([paper.title], [paper.abstract or ""])[0]
    return vector


def _lexical_closeness(index: PaperIndex, paper) -> np.ndarray:
    from ranking.ranker import LEXICAL_SIMILARITY_ONE, LEXICAL_SIMILARITY_ZERO

    cosine = index.lexical.similarity_to(index.lexical.text_vector(f"{paper.title} {paper.abstract or ''}"))[0]
    span = LEXICAL_SIMILARITY_ONE - LEXICAL_SIMILARITY_ZERO
    return np.clip((cosine - LEXICAL_SIMILARITY_ZERO) / span, 0.0, 1.0)
