"""The paper index: everything ranking needs about one set of papers, as arrays.

Building it (tokenising, stemming, loading embeddings) costs far more than scoring,
so it is cached per process, keyed by a fingerprint of the paper set read with one
aggregate query: the number of papers, the newest id, the latest ``updated_at`` (the
importers set it on every change) and how many have embeddings. Upvotes are not part
of the key: when their total moved, they alone are read again.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count, Max, Sum

from ranking import semantic, store
from ranking.lexical import LexicalIndex, stem_sequence, words

log = logging.getLogger(__name__)

_CACHE_SIZE = 4
IDENTITY_CHUNK = 5_000  # title keys (and DOIs) per query for older rows of the same papers
TOPIC_SCORE_BYTES = 16 << 20  # per index, for topics' score rows (three float32 rows each)
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
    author_rows: dict[str, set[int]] = field(default_factory=dict)  # folded name word -> papers
    category_rows: dict[str, set[int]] = field(default_factory=dict)  # "cs.cl" and "cs" -> papers
    shown: dict[int, object] = field(default_factory=dict)  # paper id -> Paper, as ``papers`` loaded it
    matched: dict[tuple[str, int], list[str]] = field(default_factory=dict)  # (topic, row) -> words (ranker)
    topic_scores: OrderedDict = field(default_factory=OrderedDict)  # (config, query) -> score rows (ranker)
    # A paper's identity across sources ("t:<title key>", "d:<doi>"), per row; and for papers
    # outside the index that share one with a row (an older row of the same paper), theirs.
    identities: list[tuple[str, ...]] = field(default_factory=list)
    identities_elsewhere: dict[int, tuple[str, ...]] = field(default_factory=dict)
    identity_rows: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self):
        for row, keys in enumerate(self.identities):
            for key in keys:
                self.identity_rows.setdefault(key, []).append(row)
        for row, names in enumerate(self.author_words):
            for name_words in names:
                for word in name_words:
                    self.author_rows.setdefault(word, set()).add(row)
        for row, categories in enumerate(self.categories):
            for category in categories:
                self.category_rows.setdefault(category, set()).add(row)
                self.category_rows.setdefault(category.split(".")[0], set()).add(row)

    @property
    def size(self) -> int:
        return len(self.ids)

    def papers_by_authors(self, names) -> np.ndarray:
        """Papers with an author whose name has all the words of one of ``names``."""
        found = np.zeros(self.size, dtype=bool)
        for name in names:
            parts = words(name)
            if not parts:
                continue
            rows = set.intersection(*(self.author_rows.get(part, set()) for part in parts))
            for row in rows:
                if any(all(part in name_words for part in parts) for name_words in self.author_words[row]):
                    found[row] = True
        return found

    def rows_same_as(self, paper_ids) -> np.ndarray:
        """Rows of these papers and of every paper with the same identity (DOI or
        normalised title), whether those ids are in the index or not: the same paper
        imported again under another key is still the paper a reader was sent."""
        found = np.zeros(self.size, dtype=bool)
        for paper_id in paper_ids:
            row = self.row_of.get(int(paper_id))
            if row is not None:
                found[row] = True
                keys = self.identities[row] if self.identities else ()
            else:
                keys = self.identities_elsewhere.get(int(paper_id), ())
            for key in keys:
                found[self.identity_rows[key]] = True
        return found

    def papers(self, ids) -> dict[int, object]:
        """``Paper`` objects for these ids of this index.

        Each is loaded once per index: the batches of an issue show the same few hundred
        papers to thousands of readers. The index's fingerprint changes with any change
        to a paper, so they are never stale, except upvotes, which are set from the
        index's own (read again when they move).
        """
        from papers.models import Paper

        missing = [i for i in ids if i not in self.shown]
        if missing:
            loaded = Paper.objects.in_bulk(missing)
            with _cache_lock:
                self.shown.update(loaded)
        found = {i: self.shown[i] for i in ids if i in self.shown}
        if self.upvotes is not None:
            for paper_id, paper in found.items():
                paper.upvotes = int(self.upvotes[self.row_of[paper_id]])
        return found

    def known_topic_scores(self, keys) -> dict[tuple, tuple]:
        """The kept (lexical, semantic, relevance) rows of those (config, query) ``keys``."""
        with _cache_lock:
            found = {key: self.topic_scores[key] for key in keys if key in self.topic_scores}
            for key in found:
                self.topic_scores.move_to_end(key)
        return found

    def keep_topic_scores(self, scores: dict[tuple, tuple]) -> None:
        """Keep topics' score rows, the least recently used going first beyond
        ``TOPIC_SCORE_BYTES`` (about 700 topics over 2,000 papers)."""
        row_bytes = 3 * 4 * max(self.size, 1)
        kept = max(1, TOPIC_SCORE_BYTES // row_bytes)
        with _cache_lock:
            self.topic_scores.update(scores)
            while len(self.topic_scores) > kept:
                self.topic_scores.popitem(last=False)

    def papers_in_categories(self, categories) -> np.ndarray:
        """Papers in any of ``categories`` (``cs.CL``, or a whole archive such as ``cs``)."""
        found = np.zeros(self.size, dtype=bool)
        for category in categories:
            rows = self.category_rows.get(str(category).lower(), ())
            found[list(rows)] = True
        return found


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def forget_topic_scores() -> None:
    """Drop the topic scores every cached index keeps (a benchmark of scoring itself)."""
    with _cache_lock:
        for index in _cache.values():
            index.topic_scores.clear()


def paper_queryset(since=None):
    from papers.models import Paper

    papers = Paper.objects.all()
    if since is not None:
        papers = papers.filter(first_seen_at__gte=since)
    return papers


def floor_to_hour(since):
    """Callers pass ``now - lookback``, different to the microsecond on every call; at
    that precision no two calls would share an index and each would rebuild it (about
    a second for 2,000 papers). Whole hours make the index shared by every preview
    and delivery batch of the hour, for at most an hour's more lookback."""
    return since.replace(minute=0, second=0, microsecond=0) if since is not None else None


def get_index(since=None) -> PaperIndex:
    """The index of the papers first seen at or after ``since`` (all papers if None).

    Queries: one aggregate for the fingerprint (how many papers, the newest id, the
    latest update, how many have embeddings, the upvote total); on a cache miss two
    to load the papers and their embeddings, and with ``since`` one for older rows of
    the same papers (and more to embed papers that lack one); when
    only upvotes moved (an update that did not touch ``updated_at``), one to read them.
    """
    since = floor_to_hour(since)
    use_semantic = semantic.is_available()
    stats = paper_queryset(since).aggregate(
        count=Count("id"),
        last_id=Max("id"),
        last_update=Max("updated_at"),
        embedded=Count("embedding"),
        votes=Sum("upvotes"),
    )
    key = (
        since.isoformat() if since else None,
        use_semantic,
        stats["count"],
        stats["last_id"],
        stats["last_update"].isoformat() if stats["last_update"] else None,
        stats["embedded"],
    )
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
    if int(index.upvotes.sum(dtype=np.float64)) != int(stats["votes"] or 0):
        votes = dict(paper_queryset(since).values_list("id", "upvotes"))
        index.upvotes = np.array([votes.get(int(i), 0) for i in index.ids], dtype=np.float32)
    return index


def build_index(since=None, *, use_semantic: bool) -> PaperIndex:
    fields = ["id", "title", "abstract", "authors", "categories", "first_seen_at", "upvotes", "title_key", "doi"]
    papers = list(paper_queryset(since).order_by("id").only(*fields))
    vectors = store.vectors_of(paper_queryset(since)) if use_semantic else None
    identities = [identity_of(p.title_key, p.doi) for p in papers]
    index = index_papers(papers, vectors, identities)
    if since is not None and papers:
        index.identities_elsewhere = _identities_before(since, identities)
    return index


def identity_of(title_key: str, doi: str) -> tuple[str, ...]:
    return tuple(key for key in (f"t:{title_key}" if title_key else "", f"d:{doi}" if doi else "") if key)


def _identities_before(since, identities) -> dict[int, tuple[str, ...]]:
    """Papers first seen before ``since`` with the identity of a paper in the index:
    one query per ``IDENTITY_CHUNK`` papers, once per index."""
    from django.db.models import Q

    from papers.models import Paper

    keys = {key for keys in identities for key in keys}
    title_keys = sorted(key[2:] for key in keys if key.startswith("t:"))
    dois = sorted(key[2:] for key in keys if key.startswith("d:"))
    found = {}
    step = IDENTITY_CHUNK  # SQLite caps a query's parameters
    for start in range(0, max(len(title_keys), len(dois), 1), step):
        wanted = Q(title_key__in=title_keys[start : start + step]) | Q(doi__in=dois[start : start + step])
        older = Paper.objects.filter(first_seen_at__lt=since).filter(wanted)
        for paper_id, title_key, doi in older.values_list("id", "title_key", "doi"):
            found[paper_id] = tuple(key for key in identity_of(title_key, doi) if key in keys)
    return found


def index_papers(papers, vectors: dict[int, np.ndarray] | None, identities=None) -> PaperIndex:
    """Index a list of ``Paper`` objects with their stored embeddings (``vectors``, None
    when ranking is lexical); papers missing one get it now, stored. ``identities`` (per
    paper, ``identity_of`` its title key and DOI) lets ``rows_same_as`` find the same
    paper under another key."""
    titles = [p.title for p in papers]
    abstracts = [p.abstract or "" for p in papers]
    embeddings = None
    if vectors is not None:
        missing = [p for p in papers if p.id not in vectors]
        if missing:
            log.info("embedding %d papers that have no stored embedding", len(missing))
            store.embed_papers(missing)
            vectors = {**vectors, **store.paper_vectors([p.id for p in missing])}
        embeddings = np.zeros((len(papers), semantic.DIMENSIONS), dtype=np.float32)
        for row, paper in enumerate(papers):
            embeddings[row] = vectors[paper.id]
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
        identities=list(identities or []),
    )
