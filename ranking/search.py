"""Search over the whole store with the topic query syntax, ranked by the digests' hybrid ranker.

A search is ranked exactly as a topic is (``ranker.score_topics``: BM25F fused with
sentence embeddings, pseudo-relevance feedback, the query syntax's filters, the
relevance floor, then the small upvote prior), but over which papers depends on the
database:

- **PostgreSQL**: full-text search picks the candidates, from the stored ``search_document``
  (the ``SearchVector`` of title and abstract, with categories and authors; a GIN index; see
  ``ranking/migrations/0003``): the ``CANDIDATES`` best by ``ts_rank_cd`` among the newest
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
from datetime import date

import numpy as np
from django.db import connection

from papers.models import Paper, listing_day, listing_day_sql
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
_DISPLAY_FIELDS = (
    "id",
    "title",
    "abstract",
    "authors",
    "categories",
    "announced_on",
    "first_seen_at",
    "published_at",
    "upvotes",
)


@dataclass
class SearchResult:
    query: ParsedQuery
    papers: list[RankedPaper] = field(default_factory=list)
    total: int = 0  # papers above the relevance floor (of the candidates, on PostgreSQL)
    seconds: float = 0.0


def uses_full_text() -> bool:
    """Whether candidates come from PostgreSQL's full-text search (else the in-memory index)."""
    return connection.vendor == "postgresql"


def search(text: str, *, limit: int = 20, first_day: date | None = None, last_day: date | None = None) -> SearchResult:
    """The papers matching ``text`` (topic syntax), best first, at most ``limit``; only papers
    listed from ``first_day`` to ``last_day`` (``papers.models.listing_day``) when given. An
    empty query finds nothing.

    Queries: on PostgreSQL one, or two when too few papers have every word (the candidates
    come with all that ranking and the page need); elsewhere the paper index's fingerprint
    (and its build when the papers changed), one for the period's papers when there is one,
    and one for the shown papers."""
    started = time.perf_counter()
    query = parse_query((text or "")[:MAX_QUERY_LENGTH])
    result = SearchResult(query=query)
    if query.is_empty:
        return result
    if uses_full_text():
        papers = _full_text_candidates(query, first_day, last_day)
        index = index_papers(papers, _vectors_of(papers))
        allowed = None
        by_id = {p.id: p for p in papers}
    else:
        index = get_index(None)
        allowed = _in_period(index, first_day, last_day)
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


def _in_period(index: PaperIndex, first_day: date | None, last_day: date | None) -> np.ndarray | None:
    """The index's rows listed in the period (one query for their ids), None for no period."""
    if first_day is None and last_day is None:
        return None
    listed = Paper.objects.annotate(day=listing_day())
    if first_day is not None:
        listed = listed.filter(day__gte=first_day)
    if last_day is not None:
        listed = listed.filter(day__lte=last_day)
    return np.isin(index.ids, np.fromiter(listed.values_list("id", flat=True), dtype=np.int64))


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


def _listing_day_sql() -> tuple[str, list]:
    return listing_day_sql(connection)


def _filters(query: ParsedQuery, first_day, last_day) -> tuple[str, list]:
    """SQL conditions for the period (the listing day, through its index) and the
    ``author:``/``cat:`` filters (names and categories as plain words of the document's D
    and C parts: a superset of what the ranker's own filters then keep)."""
    conditions, params = [], []
    day_sql, day_params = _listing_day_sql()
    if first_day is not None:
        conditions.append(f"{day_sql} >= %s")
        params += [*day_params, first_day]
    if last_day is not None:
        conditions.append(f"{day_sql} <= %s")
        params += [*day_params, last_day]
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


def _full_text_candidates(query: ParsedQuery, first_day, last_day, *, limit: int = CANDIDATES) -> list:
    """The papers to rerank: first those
    with every word of the query, best by ``ts_rank_cd`` among the newest ``MAX_MATCHES`` of
    them; then, when they are fewer than ``limit``, those with any word, ranked alike. One
    query, two when the first falls short; filter-only queries take the newest that pass."""
    fields = [*_DISPLAY_FIELDS, "abs_url", "pdf_url", "page_url", "arxiv_id"]
    table = Paper._meta.db_table
    where, where_params = _filters(query, first_day, last_day)
    every, every_params = _tsquery(query, _AND)
    if not every:  # only author:/cat: filters
        columns = ", ".join(f'paper."{name}"' for name in fields)
        day_sql, day_params = _listing_day_sql()
        sql = (
            f"SELECT {columns}, {_EMBEDDING_COLUMNS} FROM {table} paper {_EMBEDDING_JOIN} "  # noqa: S608
            f"WHERE TRUE{where} ORDER BY {day_sql} DESC, paper.first_seen_at DESC LIMIT %s"
        )
        return list(Paper.objects.raw(sql, [*where_params, *day_params, limit]))
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


def similar_paper_ids(paper, *, limit: int = 6) -> list[int]:
    """Ids of the papers closest to ``paper`` (a ``Paper`` with its title and abstract
    loaded), closest first: nearest neighbours by sentence embedding, or by tf-idf cosine
    without the semantic model. Ids, not papers: a page loads only what it shows of them.

    On PostgreSQL the neighbours are looked for among recent papers that share the most words
    with its title (one query: their embeddings, and the paper's own); elsewhere among every
    paper of the in-memory index."""
    if not uses_full_text():
        index = get_index(None)
        if index.embeddings is not None:
            closeness = fusion.paper_scale(index.embeddings @ _vector(paper))
        else:
            closeness = _lexical_closeness(index, paper)
        return _best(closeness, index.ids, paper.id, limit)
    probe = _title_probe(paper)
    if not probe:
        return []
    if semantic.is_available():
        vectors = _neighbour_vectors(probe, paper.id)
        own = vectors.pop(paper.id, None)
        if not vectors:
            return []
        ids = np.fromiter(vectors, dtype=np.int64)
        own = own if own is not None else _vector(paper)
        closeness = fusion.paper_scale(np.stack(list(vectors.values())) @ own)
    else:
        candidates = [p for p in _title_neighbours(probe) if p.id != paper.id]
        if not candidates:
            return []
        ids = np.array([p.id for p in candidates], dtype=np.int64)
        closeness = _lexical_closeness(index_papers(candidates, None), paper)
    return _best(closeness, ids, paper.id, limit)


def _title_probe(paper) -> str:
    """``to_tsquery`` text for any of the title's words (letters and digits only: safe)."""
    return " | ".join(dict.fromkeys(w for w in words(paper.title) if w not in STOPWORDS))


def _title_neighbours(probe: str) -> list:
    """Up to ``SIMILAR_CANDIDATES`` papers that have any of the title's words, best by
    ``ts_rank_cd`` (more shared words, in titles, first) among the newest ``SIMILAR_MATCHES``."""
    fields = [*_DISPLAY_FIELDS, "abs_url", "pdf_url", "arxiv_id"]
    return _ranked(Paper, fields, "to_tsquery('english', %s)", [probe], "", [], SIMILAR_CANDIDATES, SIMILAR_MATCHES)


def _neighbour_vectors(probe: str, paper_id: int) -> dict[int, np.ndarray]:
    """The stored embeddings of ``_title_neighbours``'s papers and of the paper itself, in
    one query, without their text."""
    table, embeddings = Paper._meta.db_table, PaperEmbedding._meta.db_table
    sql = (
        f"WITH matches AS (SELECT id, search_document FROM {table} "  # noqa: S608 (our tables)
        "WHERE search_document @@ to_tsquery('english', %s) ORDER BY first_seen_at DESC LIMIT %s), "
        "best AS (SELECT id FROM matches ORDER BY ts_rank_cd(search_document, to_tsquery('english', %s)) DESC "
        f"LIMIT %s) SELECT paper_id, vector, model FROM {embeddings} "
        "WHERE paper_id IN (SELECT id FROM best UNION ALL SELECT %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [probe, SIMILAR_MATCHES, probe, SIMILAR_CANDIDATES, paper_id])
        rows = cursor.fetchall()
    vectors = {paper_id: store.current_vector(blob, tag) for paper_id, blob, tag in rows}
    return {paper_id: vector for paper_id, vector in vectors.items() if vector is not None}


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
