"""The paper index: everything ranking needs about one set of papers, as arrays.

Building it (tokenising, stemming, loading embeddings) costs far more than scoring,
so it is cached per process, keyed by a fingerprint of the paper set (ids, update
times and embedding models, read with one cheap query). Upvotes change often and
are not part of the key: they are read with the fingerprint on every call.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from digests.ranking import semantic
from digests.ranking.lexical import LexicalIndex, stem_sequence, words

log = logging.getLogger(__name__)

_CACHE_SIZE = 4
_cache: OrderedDict[tuple, PaperIndex] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass
class PaperIndex:
    ids: np.ndarray  # paper ids, one per row
    row_of: dict[int, int]
    titles: list[str]
    lexical: LexicalIndex
    sequences: list[str]  # stemmed title + abstract, for phrases
    author_words: list[list[set[str]]]  # per paper, per author, the name's folded words
    authors: list[list[str]]
    categories: list[list[str]]
    first_seen: np.ndarray  # unix seconds
    embeddings: np.ndarray | None  # (papers x 384) unit vectors, or None when lexical only
    upvotes: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.ids)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _fingerprint(rows) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for paper_id, updated_at, _upvotes, model in rows:
        digest.update(f"{paper_id}:{updated_at.timestamp() if updated_at else 0}:{model};".encode())
    return digest.hexdigest()


def paper_queryset(since=None):
    from papers.models import Paper

    papers = Paper.objects.all()
    if since is not None:
        papers = papers.filter(first_seen_at__gte=since)
    return papers


def get_index(since=None) -> PaperIndex:
    """The index of the papers first seen at or after ``since`` (all papers if None).

    Queries: one for the fingerprint; on a cache miss, one to load the papers (and one
    to store embeddings of papers imported before the semantic extra was installed).
    """
    use_semantic = semantic.is_available()
    rows = list(paper_queryset(since).order_by("id").values_list("id", "updated_at", "upvotes", "embedding_model"))
    key = (since.isoformat() if since else None, use_semantic, _fingerprint(rows))
    with _cache_lock:
        index = _cache.get(key)
        if index is not None:
            _cache.move_to_end(key)
    if index is None:
        index = build_index(since, use_semantic=use_semantic)
        with _cache_lock:
            _cache[key] = index
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    upvotes = dict((paper_id, votes) for paper_id, _u, votes, _m in rows)
    index.upvotes = np.array([upvotes.get(int(i), 0) for i in index.ids], dtype=np.float32)
    return index


def build_index(since=None, *, use_semantic: bool) -> PaperIndex:
    fields = ["id", "title", "abstract", "authors", "categories", "first_seen_at", "upvotes"]
    if use_semantic:
        fields += ["embedding", "embedding_model"]
    papers = list(paper_queryset(since).order_by("id").only(*fields))
    return index_papers(papers, use_semantic=use_semantic)


def index_papers(papers, *, use_semantic: bool) -> PaperIndex:
    """Index a list of ``Paper`` objects (those missing an embedding get one, stored)."""
    titles = [p.title for p in papers]
    abstracts = [p.abstract or "" for p in papers]
    embeddings = None
    if use_semantic:
        embeddings = np.zeros((len(papers), semantic.DIMENSIONS), dtype=np.float32)
        missing = []
        for row, paper in enumerate(papers):
            vector = semantic.from_bytes(paper.embedding) if semantic.is_current(paper) else None
            if vector is None:
                missing.append(row)
            else:
                embeddings[row] = vector
        if missing:
            log.info("embedding %d papers that have no stored embedding", len(missing))
            semantic.embed_papers([papers[row] for row in missing])
            for row in missing:
                embeddings[row] = semantic.from_bytes(papers[row].embedding)
    authors = [[str(a) for a in (p.authors or [])] for p in papers]
    return PaperIndex(
        ids=np.array([p.id for p in papers], dtype=np.int64),
        row_of={p.id: row for row, p in enumerate(papers)},
        titles=titles,
        lexical=LexicalIndex(titles, abstracts),
        sequences=[stem_sequence(f"{t} . {a}") for t, a in zip(titles, abstracts, strict=True)],
        author_words=[[set(words(a)) for a in names] for names in authors],
        authors=authors,
        categories=[[str(c).lower() for c in (p.categories or [])] for p in papers],
        first_seen=np.array([p.first_seen_at.timestamp() if p.first_seen_at else 0.0 for p in papers]),
        embeddings=embeddings,
        upvotes=np.array([p.upvotes for p in papers], dtype=np.float32),
    )
