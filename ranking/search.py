"""Search over the whole store with the topic query syntax, ranked by the digests' hybrid ranker.

A search is ranked exactly as a topic is (``ranker.score_topics``: BM25F fused with
sentence embeddings, pseudo-relevance feedback, the query syntax's filters, the
relevance floor, then the small upvote prior), but over which papers depends on the
database:

- **PostgreSQL**: full-text search picks the candidates, from the stored ``search_document``
  (the ``SearchVector`` of title and abstract, with categories and authors; a GIN index; see
  ``pages/migrations``): the ``CANDIDATES`` best by ``ts_rank_cd`` among the newest
  ``MAX_MATCHES`` papers that have every word of the query, then, if they are too few,
  among those with any of them. Only those are loaded, indexed (``index.index_papers``)
  and ranked, so a web process never holds every paper, and a search costs the same
  whatever the size of the store (``bench/site_load.py``: 100,000 papers).
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

from papers.models import Paper
from ranking import fusion, semantic, store
from ranking.fusion import floor_for, trending_prior
from ranking.index import PaperIndex, get_index, index_papers
from ranking.lexical import STOPWORDS, words
from ranking.models import PaperEmbedding
from ranking.personal import LEXICAL_SIMILARITY_ONE, LEXICAL_SIMILARITY_ZERO
from ranking.query import ParsedQuery, parse_query
from ranking.ranker import RankedPaper, TopicRef, matched_words, score_topics

CANDIDATES = 200  # papers reranked per query on PostgreSQL
MAX_MATCHES = 2_000  # full-text matches ts_rank_cd is computed for (the newest), bounding a common word's cost
MAX_QUERY_LENGTH = 300
_DISPLAY_FIELDS = ("id", "title", "abstract", "authors", "categories", "first_seen_at", "published_at", "upvotes")


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

    Queries: on PostgreSQL one, or two when too few papers have every word (the candidates
    come with all that ranking and the page need); elsewhere the paper index's fingerprint
    (and its build when the papers changed) and one for the shown papers."""
    started = time.perf_counter()
    query = parse_query((text or "")[:MAX_QUERY_LENGTH])
    result = SearchResult(query=query)
    if query.is_empty:
        return result
    if uses_full_text():
        papers = _full_text_candidates(query, start, end)
        index = index_papers(papers, _vectors_of(papers))
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
# The document is the stored ``search_document`` column (``ranking/migrations/0003``): the
# SearchVector of title (A) and abstract (B), categories (C) and authors (D).

_AND, _OR = " && ", " || "


def _tsquery(query: ParsedQuery, joiner: str) -> tuple[str, list]:
    """SQL for the query's words and phrases, all (``_AND``) or any (``_OR``) of them, with
    its exclusions ruled out; ("", []) when it has no words."""
    parts, params = [], []
    for word in query.words:
        parts.append("plainto_tsquery('english', %s)")
        params.append(word)
    for phrase in query.phrases:
        parts.append("phraseto_tsquery('english', %s)")
        params.append(phrase)
    if not parts:
        return "", []
    sql = "(" + joiner.join(parts) + ")"
    for excluded in (*query.excluded_words, *query.excluded_phrases):
        sql += " && !!phraseto_tsquery('english', %s)"
        params.append(excluded)
    return f"({sql})", params


def _filters(query: ParsedQuery, start, end) -> tuple[str, list]:
    """SQL conditions for the period and the ``author:``/``cat:`` filters (names and
    categories as plain words of the document's D and C parts: a superset of what the
    ranker's own filters then keep)."""
    conditions, params = [], []
    if start is not None:
        conditions.append("first_seen_at >= %s")
        params.append(start)
    if end is not None:
        conditions.append("first_seen_at < %s")
        params.append(end)
    names = [" & ".join(f"{w}:D" for w in words(name)) for name in query.authors]
    names = [name for name in names if name]
    if names:
        conditions.append("search_document @@ to_tsquery('simple', %s)")
        params.append(" | ".join(f"({name})" for name in names))
    categories = [c for c in (_category_term(c) for c in query.categories) if c]
    if categories:
        conditions.append("search_document @@ to_tsquery('simple', %s)")
        params.append(" | ".join(categories))
    return "".join(f" AND {c}" for c in conditions), params


def _category_term(category: str) -> str:
    """``cs.CL`` -> ``cs.cl:C``; an archive (``cs``) -> ``cs:*C`` (any of its categories)."""
    import re

    if not re.fullmatch(r"[a-z0-9.\-]+", category):
        return ""
    return f"{category}:C" if "." in category else f"{category}:*C"


# Each candidate comes with its stored embedding, if any, in the same query.
_EMBEDDING_COLUMNS = "embedding.vector AS stored_vector, embedding.model AS stored_model"
_EMBEDDING_JOIN = f"LEFT JOIN {PaperEmbedding._meta.db_table} embedding ON embedding.paper_id = paper.id"


def _full_text_candidates(query: ParsedQuery, start, end, *, limit: int = CANDIDATES) -> list:
    """The papers to rerank: first those
    with every word of the query, best by ``ts_rank_cd`` among the newest ``MAX_MATCHES`` of
    them; then, when they are fewer than ``limit``, those with any word, ranked alike. One
    query, two when the first falls short; filter-only queries take the newest that pass."""
    fields = [*_DISPLAY_FIELDS, "abs_url", "pdf_url", "page_url", "arxiv_id"]
    table = Paper._meta.db_table
    where, where_params = _filters(query, start, end)
    every, every_params = _tsquery(query, _AND)
    if not every:  # only author:/cat: filters
        columns = ", ".join(f'paper."{name}"' for name in fields)
        sql = (
            f"SELECT {columns}, {_EMBEDDING_COLUMNS} FROM {table} paper {_EMBEDDING_JOIN} "  # noqa: S608
            f"WHERE TRUE{where} ORDER BY paper.first_seen_at DESC LIMIT %s"
        )
        return list(Paper.objects.raw(sql, [*where_params, limit]))
    found = _ranked(Paper, fields, every, every_params, where, where_params, limit)
    if len(found) < limit and len(query.words) + len(query.phrases) > 1:
        some, some_params = _tsquery(query, _OR)
        rest = f"{where} AND NOT (search_document @@ {every})"
        found += _ranked(Paper, fields, some, some_params, rest, [*where_params, *every_params], limit - len(found))
    return found


def _ranked(
    Paper, fields, tsquery: str, params: list, where: str, where_params: list, limit: int, matches=None
) -> list:
    """The ``limit`` best by ``ts_rank_cd`` among the newest ``MAX_MATCHES`` matches of ``tsquery``:
    ranking reads each match's stored vector, so a common word costs no more
    than ``MAX_MATCHES`` of them."""
    table = Paper._meta.db_table
    columns = ", ".join(f'paper."{name}"' for name in fields)
    sql = (
        f"WITH matches AS (SELECT id, search_document FROM {table} "  # noqa: S608 (our columns and fragments)
        f"WHERE search_document @@ {tsquery}{where} ORDER BY first_seen_at DESC LIMIT %s), "
        f"best AS (SELECT id, ts_rank_cd(search_document, {tsquery}) AS rank FROM matches ORDER BY rank DESC LIMIT %s) "
        f"SELECT {columns}, {_EMBEDDING_COLUMNS} FROM {table} paper JOIN best ON best.id = paper.id {_EMBEDDING_JOIN} "
        "ORDER BY best.rank DESC, paper.first_seen_at DESC"
    )
    return list(Paper.objects.raw(sql, [*params, *where_params, matches or MAX_MATCHES, *params, limit]))


# -- similar papers ---------------------------------------------------------------------

SIMILAR_MIN = 0.05  # on the 0..1 paper-to-paper scale: below it, unrelated
SIMILAR_CANDIDATES = 100
# A paper page must stay fast: its neighbours come from the newest papers that have any word
# of its title. (Weighted to titles only, ``word:A``, the GIN index cannot answer alone: every
# paper with the word anywhere is checked again, 0.7 s for a common word at 100,000 papers.)
SIMILAR_MATCHES = 500


def similar_papers(paper, *, limit: int = 6) -> list:
    """Papers closest to ``paper`` (a ``Paper`` with its title and abstract loaded):
    nearest neighbours by sentence embedding, or by tf-idf cosine without the semantic model.

    On PostgreSQL the neighbours are looked for among recent papers that share the most words
    with its title (one query); elsewhere among every paper of the in-memory index."""

    if uses_full_text():
        candidates = [p for p in _title_neighbours(paper) if p.id != paper.id]
        if not candidates:
            return []
        if semantic.is_available():
            stored = store.paper_vectors([p.id for p in candidates])
            candidates = [p for p in candidates if p.id in stored]
            matrix = np.stack([stored[p.id] for p in candidates]) if candidates else np.zeros((0, semantic.DIMENSIONS))
            closeness = fusion.paper_scale(matrix @ _vector(paper)) if candidates else np.zeros(0)
        else:
            index = index_papers(candidates, None)
            closeness = _lexical_closeness(index, paper)
    else:
        index = get_index(None)
        if index.embeddings is not None:
            closeness = fusion.paper_scale(index.embeddings @ _vector(paper))
        else:
            closeness = _lexical_closeness(index, paper)
        shown = [int(i) for i in _best(closeness, index.ids, paper.id, limit)]
        found = index.papers(shown)
        return [found[i] for i in shown if i in found]
    ids = np.array([p.id for p in candidates], dtype=np.int64)
    by_id = {p.id: p for p in candidates}
    return [by_id[int(i)] for i in _best(closeness, ids, paper.id, limit)]


def _title_neighbours(paper) -> list:
    """Up to ``SIMILAR_CANDIDATES`` papers that have any of this title's words, best by
    ``ts_rank_cd`` (more shared words, in titles, first) among the newest ``SIMILAR_MATCHES``."""

    title_words = list(dict.fromkeys(w for w in words(paper.title) if w not in STOPWORDS))
    if not title_words:
        return []
    fields = [*_DISPLAY_FIELDS, "abs_url", "pdf_url", "arxiv_id"]
    probe = " | ".join(title_words)  # letters and digits only: safe in to_tsquery
    return _ranked(Paper, fields, "to_tsquery('english', %s)", [probe], "", [], SIMILAR_CANDIDATES, SIMILAR_MATCHES)


def _best(closeness: np.ndarray, ids: np.ndarray, own_id: int, limit: int) -> list[int]:
    order = np.argsort(-closeness, kind="stable")
    chosen = [int(ids[row]) for row in order if closeness[row] >= SIMILAR_MIN and int(ids[row]) != own_id]
    return chosen[:limit]


def _vector(paper):
    """The paper's stored embedding, or one computed now (a paper not embedded yet)."""
    vector = store.paper_vectors([paper.id]).get(paper.id)
    if vector is None:
        vector = semantic.embed_paper_texts([paper.title], [paper.abstract or ""])[0]
    return vector


def _vectors_of(papers) -> dict | None:
    """Stored embeddings of the candidates (loaded with them), None when ranking is lexical;
    a candidate without one gets it while its index is built."""
    if not semantic.is_available():
        return None
    vectors = {p.id: store.current_vector(p.stored_vector, p.stored_model) for p in papers}
    return {paper_id: vector for paper_id, vector in vectors.items() if vector is not None}


def _lexical_closeness(index: PaperIndex, paper) -> np.ndarray:
    cosine = index.lexical.similarity_to(index.lexical.text_vector(f"{paper.title} {paper.abstract or ''}"))[0]
    span = LEXICAL_SIMILARITY_ONE - LEXICAL_SIMILARITY_ZERO
    return np.clip((cosine - LEXICAL_SIMILARITY_ZERO) / span, 0.0, 1.0)
