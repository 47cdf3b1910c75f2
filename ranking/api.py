"""The ranking's public functions (stable; the internals behind them may change).

- ``rank_topics(queries, ...)`` ranks the papers in the database for topic queries, as
  the digest does for a new subscriber: ``RankedPaper`` items, best first.
- ``rank_requests(requests, ...)`` ranks for many readers at once (``Request``: their
  topics, authors, papers to leave out, their votes (``Vote``: paper, 👍/👎, the topic
  section it was given in, when) and example papers) with a fixed number of queries,
  whatever their number. Votes and examples are evidence, never a veto (``personal``).
- ``embed_papers(papers)``: stores the embeddings of new or changed papers (the
  ``papers_stored`` signal calls it inside the import's transaction).
- ``store_topic_embeddings(queries)``: a task runs it for topics made at signup, so that
  an issue's ranking finds their embeddings stored.
- ``snippet_pieces(topic, abstract, limit)``: the abstract sentence that best matches a
  topic, as (text, is_topic_word) pieces (the digest shows it with those words in bold).
- ``quote_author_names(text)`` and ``topic_problem(text)``: the query syntax's help for
  whoever stores a topic (a full name after ``author:``; topics that would match nothing).
- ``search_papers(text, ...)`` and ``similar_paper_ids(paper)``: the public site's search and
  "similar papers" (``ranking.search``: full-text candidates on PostgreSQL, reranked by the
  same hybrid ranker).
- ``stored_similar_ids(paper_id)``: a paper's similar papers as stored after its import
  (``ranking.neighbours``; one query), None when it has no list (no embedding, or not yet:
  then ``similar_paper_ids``). ``store_neighbours(paper_ids)`` computes and stores them (a
  task after each import; ``ranking.signals.neighbours_stored`` says when they changed).

How: each distinct topic is scored once against every paper (BM25F over title and
abstract, fused with sentence-embedding similarity when the model is available; see
``fusion``), weak matches fall under a floor, upvotes reorder what is left, followed
authors come first and feedback moves each reader's ranking.
"""

from __future__ import annotations

from ranking import neighbours, semantic, store
from ranking.explain import snippet as snippet_pieces
from ranking.index import floor_to_hour
from ranking.personal import Vote
from ranking.query import quote_author_names, topic_problem
from ranking.ranker import RankedPaper, Request, TopicRef, parsed, rank_requests
from ranking.search import SearchResult, similar_paper_ids
from ranking.search import search as search_papers

__all__ = [
    "RankedPaper",
    "Request",
    "SearchResult",
    "TopicRef",
    "Vote",
    "embed_papers",
    "floor_to_hour",
    "forget_topic_embeddings",
    "quote_author_names",
    "rank_requests",
    "rank_topics",
    "search_papers",
    "similar_paper_ids",
    "snippet_pieces",
    "store_neighbours",
    "store_topic_embeddings",
    "stored_similar_ids",
    "stored_similar_sql",
    "topic_problem",
]


def rank_topics(
    queries, *, since=None, limit=10, authors=(), exclude_paper_ids=(), example_paper_ids=()
) -> list[RankedPaper]:
    """Papers for these topic queries, best first: what a new subscriber with these
    topics, followed ``authors`` and ``example_paper_ids`` (papers like those they want,
    each counted as a 👍) would get (the signup preview and ``rank_papers``)."""
    topics = [TopicRef(query=q.strip()) for q in dict.fromkeys(queries) if q and q.strip()]
    request = Request(
        key=None,
        topics=topics,
        authors=list(authors),
        exclude_ids=set(exclude_paper_ids),
        example_paper_ids=[int(i) for i in example_paper_ids],
    )
    return rank_requests([request], since=since, limit=limit)[None]


def embed_papers(papers) -> int:
    """Compute and store sentence embeddings for new or changed papers. Without the
    model it does nothing (and says so once in the log): ranking is then lexical."""
    return store.embed_papers(papers)


def store_topic_embeddings(queries) -> int:
    """Compute and store the embeddings of followed topics where none is stored; returns
    how many. Done when a topic is made (signup, preferences), so that ranking an issue
    never waits for the encoder. Without the model it does nothing."""
    if not semantic.is_available():
        return 0
    texts = {parsed(query).free_text for query in queries} - {""}
    missing = sorted(texts - set(store.stored_query_vectors(texts)))
    if missing:
        store.store_query_vectors(dict(zip(missing, semantic.embed_queries(missing), strict=True)))
    return len(missing)


def forget_topic_embeddings(queries) -> None:
    """Drop what is stored for topics nobody follows any more."""
    store.forget_queries({parsed(query).free_text for query in queries} - {""})


def stored_similar_ids(paper_id: int) -> list[int] | None:
    """Ids of the papers nearest to this one, closest first, as stored after its import
    (more than a page shows: one may have been deleted since); None when it has no list."""
    return neighbours.stored_ids(paper_id)


def stored_similar_sql(vendor: str) -> neighbours.StoredIdsSql:
    """``stored_similar_ids`` as SQL, for a query that reads the papers with them
    (``ranking.neighbours.StoredIdsSql``)."""
    return neighbours.stored_ids_sql(vendor)


def store_neighbours(paper_ids) -> int:
    """Find and store the neighbours of these (new or changed) papers, and put them into
    older papers' lists they belong in; returns how many lists were written."""
    return neighbours.update(paper_ids)
