"""A reader's votes and example papers as evidence for their ranking, never a veto.

Each of a reader's topics gets, from all their votes together, a Rocchio-style pair of
centroids in the paper space: what they liked (👍 and example papers) and what they
disliked (👎). A paper's relevance to the topic then moves by how close it is to
each, on a 0..1 similarity scale (sentence-embedding cosine once what all the papers
share is taken out; tf-idf cosine when ranking is lexical):

    relevance + LIKE_WEIGHT * trust(likes) * (near_liked + liked_words)
              - DISLIKE_WEIGHT * trust(dislikes) * max(0, near_disliked - near_liked)

``near_liked`` is the larger of the likeness to the liked papers' centroid and, for
the paper most like a liked paper (``VoteSimilarity.nearest``), that like's full weight:
"more like this" says most about the paper most like it, whatever the absolute scale.

``liked_words`` is relevance feedback on the words (RM3 from the reader's explicit
positives): the ``EXPANSION_TERMS`` words that weigh most (BM25F) in the liked papers,
as a query, scored on the lexical 0..1 scale; a paper the sentence model puts a little
apart from the liked ones but that uses their words comes closer.

- A 👎 counts in the section it was given in: it moves that topic's papers only (a
  vote with no topic, from older links, counts for every topic). A 👍 counts fully for
  its topic and at half weight for the others, so it lifts related papers wherever
  they are.
- The dislike pulls down only what is closer to the disliked papers than to the liked
  ones: a relevant paper of the same field as a disliked one, and like a liked one,
  keeps its place.
- ``trust`` = weight / (weight + PRIOR_VOTES): one vote moves a little, several agreeing
  votes more; with none, the ranking is the unpersonalised one. A vote's weight halves
  every ``HALF_LIFE_DAYS``: recent votes say more about what the reader wants now.
- A paper that matches a topic hardly at all (below ``SOME_MATCH`` of the floor) is
  never lifted for it, and the ranker keeps every strong match of the text alone
  (``selection``) whatever the votes: they neither delete relevant papers nor invent
  relevance.
- Each liked paper's nearest paper (the first of its similar papers, as its page lists
  them) that the reader has not voted on nor been sent counts as fully like it, but only
  to bring papers in from under the text's cut: it does not reorder the text's strong
  matches (``Personalised.ordering``). The absolute scale misses the neighbours of a
  liked paper that sits apart from the period's other papers: MiniCPM-V ("a GPT-4V level
  MLLM on your phone") has nothing nearer than an on-device planner judged relevant to
  "small multimodal models for phones" (cosine 0.42; 0.14 on the scale of the likeness
  to the centroid of the three liked papers), which the centroid alone never brought
  in. The like's weight counts (relative to the reader's heaviest like: a like from
  another section at half). Taking a liked paper's two or three nearest brings in more
  unjudged papers than relevant ones, and half the full likeness brings in none
  (bench/README.md).
- Votes decide the borderline; they barely reorder what the text is sure of. The
  ranker (``ranker._choose``) orders the text's strong matches of a topic by the text,
  lowered by the dislikes in full and raised by only ``STRONG_LIKE_SHARE`` of the
  lift (enough to break a near-tie), and shows what the votes alone make strong after
  them (each paper's score still says the whole lift). Measured on the judged topics
  (``bench/ranking_quality.py --feedback``): with the full lift among the strong
  matches, likes reordered near-ties about as often against the judges as with them
  (one topic lost 0.136 nDCG@10 to two example papers, another 0.087 to votes),
  while what the votes bring in from under the cut is where the gain is.

Measured with ``bench/ranking_quality.py --feedback`` (see bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from scipy import sparse

from papers.models import Paper
from ranking import semantic, store
from ranking.fusion import paper_scale

LIKE_WEIGHT = 0.3
DISLIKE_WEIGHT = 0.5
STRONG_LIKE_SHARE = 0.25  # of the lift that counts among the text's strong matches (ordering only)
EXPANSION_TERMS = 10  # the liked papers' heaviest words that make their query (liked_words)
PRIOR_VOTES = 1.0
HALF_LIFE_DAYS = 90.0
SOME_MATCH = 0.5  # share of the floor a paper's own relevance must reach to be lifted
OTHER_SECTION_LIKE = 0.5
LIKED_WHY = 0.5  # from this similarity on, the "why" names the liked paper
NEAREST_MIN = 0.05  # a liked paper's nearest paper less similar (0..1) than this is unrelated (search.SIMILAR_MIN)
CENTRED_COSINE_ONE = 0.6  # centred sentence-embedding cosine of two papers on one subject
# Paper-to-paper similarity without sentence embeddings: tf-idf cosine on this 0..1 scale.
LEXICAL_SIMILARITY_ZERO, LEXICAL_SIMILARITY_ONE = 0.05, 0.45


@dataclass(frozen=True)
class Vote:
    """A reader's 👍 (``vote`` 1) or 👎 (-1) on a paper, in the section of the topic
    ``topic_id`` (a ``TopicRef.id``; None: no section, it counts for every topic), cast
    at ``at`` (None: now). Example papers are 👍 with no topic."""

    paper_id: int
    vote: int
    topic_id: int | None = None
    at: datetime | None = None


def evidence_of(request) -> list[Vote]:
    """All of a request's evidence as votes: ``votes``, the plain ``liked_ids`` and
    ``disliked_ids``, and ``example_paper_ids``; one per paper, the last given wins."""
    found: dict[int, Vote] = {}
    for paper_id in request.example_paper_ids:
        found[int(paper_id)] = Vote(int(paper_id), 1)
    for paper_id in request.liked_ids:
        found[int(paper_id)] = Vote(int(paper_id), 1)
    for paper_id in request.disliked_ids:
        found[int(paper_id)] = Vote(int(paper_id), -1)
    for vote in request.votes:
        if vote.vote not in (1, -1):
            raise ValueError(f"a vote is 1 or -1, not {vote.vote!r}")
        found[int(vote.paper_id)] = vote
    return list(found.values())


def weight_of(vote: Vote, now: datetime) -> float:
    if vote.at is None:
        return 1.0
    at = vote.at if vote.at.tzinfo else vote.at.replace(tzinfo=UTC)
    age_days = max(0.0, (now - at).total_seconds() / 86400.0)
    return 0.5 ** (age_days / HALF_LIFE_DAYS)


class VoteSimilarity:
    """Similarity of every paper of the index to each paper any reader of this call
    voted on (``cosine``, papers x voted), and of the voted papers to each other
    (``gram``), so that the similarity to any weighted centroid of them is two small
    products: sentence-embedding cosine when semantic ranking is on, tf-idf otherwise."""

    def __init__(self, index, paper_ids, semantic_on: bool):
        self.index = index
        self.semantic_on = semantic_on
        ids = list(dict.fromkeys(int(i) for i in paper_ids))
        self.column_of = {paper_id: col for col, paper_id in enumerate(ids)}
        self.titles: list[str] = [""] * len(ids)
        self.cosine = np.zeros((index.size, len(ids)), dtype=np.float32)
        self.gram = np.eye(len(ids), dtype=np.float32)
        self.alike = self.cosine  # plain similarity (0..1) of each paper to each voted one, for the "why"
        self.known: set[int] = set()  # the voted papers that exist (a vote on any other is ignored)
        self.terms = None  # (voted x terms) BM25F weights, for the liked papers' words
        if not ids or not index.size:
            return
        outside = [i for i in ids if i not in index.row_of]
        loaded = {}
        if outside:
            loaded = {p.id: p for p in Paper.objects.filter(id__in=outside).only("id", "title", "abstract")}
        self.known = {i for i in ids if i in index.row_of or i in loaded}
        for paper_id, col in self.column_of.items():
            row = index.row_of.get(paper_id)
            self.titles[col] = index.titles[row] if row is not None else getattr(loaded.get(paper_id), "title", "")
        self.terms = self._term_vectors(ids, loaded)
        single = index.lexical.single_words
        self._single = []  # per voted paper: its single-word term columns and their weights
        for col in range(len(ids)):
            start, end = self.terms.indptr[col], self.terms.indptr[col + 1]
            columns, data = self.terms.indices[start:end], self.terms.data[start:end]
            self._single.append((columns[single[columns]], data[single[columns]]))
        self._words_scores: dict = {}
        if semantic_on:
            self._semantic(ids, loaded)
        else:
            self._lexical()

    def _semantic(self, ids, loaded):
        """Cosine after taking out what every paper of the index shares (their mean):
        papers of one field all look alike to the model, and a vote says which part of
        the field the reader means."""
        index = self.index
        vectors = np.zeros((len(ids), semantic.DIMENSIONS), dtype=np.float32)
        stored = store.paper_vectors(list(loaded)) if loaded else {}
        for paper_id, col in self.column_of.items():
            row = index.row_of.get(paper_id)
            if row is not None:
                vectors[col] = index.embeddings[row]
            elif paper_id in loaded:
                vector = stored.get(paper_id)
                if vector is None:
                    paper = loaded[paper_id]
                    vector = semantic.embed_paper_texts([paper.title], [paper.abstract or ""])[0]
                vectors[col] = vector
        mean = index.embeddings.mean(axis=0)
        centred = vectors - mean
        centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-6)
        along_mean = index.embeddings @ mean
        # |p - mean| for unit p, without building the centred (papers x dims) matrix
        paper_norms = np.sqrt(np.maximum(1.0 - 2.0 * along_mean + float(mean @ mean), 1e-12))
        self.cosine = ((index.embeddings @ centred.T) - (mean @ centred.T)[None, :]) / paper_norms[:, None]
        self.gram = centred @ centred.T
        self.alike = paper_scale(index.embeddings @ vectors.T)

    def _term_vectors(self, ids, loaded):
        """(voted x terms) BM25F weights of the voted papers over the index's vocabulary
        (a paper outside the index, from an earlier issue, from its title and abstract)."""
        index = self.index
        rows = []
        for paper_id in ids:
            row = index.row_of.get(paper_id)
            if row is not None:
                rows.append(index.lexical.row_vectors([row]))
            else:
                paper = loaded.get(paper_id)
                rows.append(index.lexical.text_vector(f"{paper.title} {paper.abstract}" if paper else ""))
        return sparse.vstack(rows).tocsr().astype(np.float64)

    def _lexical(self):
        index = self.index
        vectors = self.terms
        norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        vectors = sparse.diags(1.0 / norms) @ vectors
        self.cosine = index.lexical.similarity_to(vectors.tocsr()).T
        self.gram = np.asarray((vectors @ vectors.T).toarray(), dtype=np.float32)
        self.alike = self.scaled(self.cosine)

    def scaled(self, cosine: np.ndarray) -> np.ndarray:
        """Cosine on a 0..1 scale (0: unrelated or less)."""
        if self.semantic_on:
            return np.clip(cosine / CENTRED_COSINE_ONE, 0.0, 1.0).astype(np.float32)
        span = LEXICAL_SIMILARITY_ONE - LEXICAL_SIMILARITY_ZERO
        return np.clip((cosine - LEXICAL_SIMILARITY_ZERO) / span, 0.0, 1.0).astype(np.float32)

    def liked_words(self, cols: list[int], weights: np.ndarray) -> np.ndarray:
        """Every paper's lexical score (0..1, as a topic's) for the query made of the
        ``EXPANSION_TERMS`` single words that weigh most in these voted papers together.
        Plain numpy over the sparse arrays (it runs for each reader's topic with likes),
        remembered for the call."""
        size = self.index.size
        if not cols or self.terms is None:
            return np.zeros(size, dtype=np.float32)
        weights = np.asarray(weights, dtype=np.float64)
        # Only the weights' proportions choose the words: likes all from one section
        # weigh a reader's topics alike.
        key = (tuple(cols), np.round(weights / max(float(weights.sum()), 1e-12), 9).tobytes())
        found = self._words_scores.get(key)
        if found is None:
            found = self._words_scores[key] = self._score_words(cols, weights)
        return found

    def _score_words(self, cols, weights) -> np.ndarray:
        lexical, size = self.index.lexical, self.index.size
        columns = np.concatenate([self._single[col][0] for col in cols])
        weight = np.concatenate([self._single[col][1] * w for col, w in zip(cols, weights, strict=True)])
        if columns.size == 0:
            return np.zeros(size, dtype=np.float32)
        unique, where = np.unique(columns, return_inverse=True)
        summed = np.bincount(where, weights=weight)
        top = unique[np.argsort(-summed, kind="stable")[:EXPANSION_TERMS]]
        by_term = lexical.weights_by_term
        rows = np.concatenate([by_term.indices[by_term.indptr[c] : by_term.indptr[c + 1]] for c in top])
        data = np.concatenate([by_term.data[by_term.indptr[c] : by_term.indptr[c + 1]] for c in top])
        raw = np.bincount(rows, weights=data, minlength=size)
        return (raw / float(lexical.idf[top].sum())).astype(np.float32)

    def nearest(self, cols: list[int], weights: np.ndarray, unavailable: np.ndarray):
        """Per paper: the weight (relative to the heaviest of ``weights``) of the liked
        paper (of ``cols``) it is the nearest paper of, by ``alike`` (what a paper's page
        lists its similar papers by), among the papers not ``unavailable`` (booleans per
        paper: voted on, sent before), and that liked paper's column (-1: the nearest of
        none). A nearest paper under ``NEAREST_MIN`` is unrelated and counts for nothing."""
        size = self.index.size
        likeness, which = np.zeros(size, dtype=np.float32), np.full(size, -1, dtype=np.int64)
        if not cols or not size:
            return likeness, which
        alike = np.where(np.asarray(unavailable, dtype=bool)[:, None], -1.0, self.alike[:, cols])
        rows = alike.argmax(axis=0)
        weights = np.asarray(weights, dtype=np.float64)
        heaviest = max(float(weights.max()), 1e-12)
        for j, (row, col) in enumerate(zip(rows, cols, strict=True)):
            share = float(weights[j]) / heaviest
            if alike[row, j] >= NEAREST_MIN and share > likeness[row]:
                likeness[row], which[row] = share, col
        return likeness, which

    def near_centroid(self, cols: list[int], weights: np.ndarray) -> np.ndarray:
        """Every paper's similarity (0..1) to the weighted centroid of these columns."""
        if not cols:
            return np.zeros(self.index.size, dtype=np.float32)
        weights = np.asarray(weights, dtype=np.float32)
        norm = float(np.sqrt(max(weights @ self.gram[np.ix_(cols, cols)] @ weights, 1e-12)))
        return self.scaled((self.cosine[:, cols] @ weights) / norm)


@dataclass
class Personalised:
    """A reader's topics' relevance after their votes (same shape as the block given),
    per topic and paper the column of the liked paper to name in the "why" (-1: none),
    and ``ordering``: the relevance without the liked papers' nearest papers' lift, what
    orders the text's strong matches (the nearest-paper rule only brings papers in)."""

    relevance: np.ndarray
    liked_col: np.ndarray
    ordering: np.ndarray


def personalise(
    block, topic_ids, votes: list[Vote], similarity: VoteSimilarity, floor: float, now=None, unavailable=None
):
    """``block`` (the reader's topics x papers, -inf where a topic's filters rule a paper
    out) moved by the reader's ``votes``; ``topic_ids`` are the rows' ``TopicRef.id``;
    ``unavailable``: booleans per paper, those the reader will not be shown (sent before;
    their voted papers are always left out), never taken as a liked paper's nearest."""
    index = similarity.index
    liked_col = np.full(block.shape, -1, dtype=np.int64)
    votes = [v for v in votes if int(v.paper_id) in similarity.known]
    if not votes or not block.size:
        return Personalised(block, liked_col, block)
    now = now or datetime.now(UTC)
    unavailable = np.zeros(index.size, dtype=bool) if unavailable is None else np.array(unavailable, dtype=bool)
    unavailable[[index.row_of[int(v.paper_id)] for v in votes if int(v.paper_id) in index.row_of]] = True
    relevance = np.array(block, dtype=np.float64)
    ordering = relevance.copy()
    for t, topic_id in enumerate(topic_ids):
        liked, disliked = _evidence_for(topic_id, votes)
        row = relevance[t].copy()
        cols, weights = _columns_and_weights(similarity, liked, now)
        near_liked = similarity.near_centroid(cols, weights)
        nearest, nearest_col = similarity.nearest(cols, weights, unavailable)
        words = similarity.liked_words(cols, weights)
        trust = LIKE_WEIGHT * _trust(liked, now)
        sink = DISLIKE_WEIGHT * _trust(disliked, now) * np.maximum(0.0, _near(similarity, disliked, now) - near_liked)
        ordering[t] = _moved(row, trust * (near_liked + words) - sink, floor)
        lift = trust * (np.maximum(near_liked, nearest) + words)
        relevance[t] = _moved(row, lift - sink, floor)
        if liked:
            each = similarity.alike[:, cols]
            best = each.argmax(axis=1)
            closest = each[np.arange(index.size), best]
            named = np.where(closest >= LIKED_WHY, np.asarray(cols)[best], nearest_col)
            liked_col[t] = np.where((named >= 0) & (lift > 0), named, -1)
    return Personalised(relevance, liked_col, ordering)


def _moved(row: np.ndarray, change: np.ndarray, floor: float) -> np.ndarray:
    """A topic's relevance row moved by ``change``, never raised where the paper hardly
    matches the topic (no relevance invented), never moved where a filter rules it out."""
    moved = row + change
    moved = np.where(row < SOME_MATCH * floor, np.minimum(moved, row), moved)
    return np.where(np.isfinite(row), moved, row)


def _evidence_for(topic_id, votes):
    """The votes that count for a topic: its own section's and those with no section,
    each 👎 of other sections not at all, each 👍 of other sections at
    ``OTHER_SECTION_LIKE`` of its weight (a like says something about the reader)."""
    liked, disliked = [], []
    for vote in votes:
        own = topic_id is None or vote.topic_id is None or vote.topic_id == topic_id
        if vote.vote > 0:
            liked.append((vote, 1.0 if own else OTHER_SECTION_LIKE))
        elif own:
            disliked.append((vote, 1.0))
    return liked, disliked


def _columns_and_weights(similarity: VoteSimilarity, weighed, now):
    cols = [similarity.column_of[int(vote.paper_id)] for vote, _ in weighed]
    return cols, np.array([share * weight_of(vote, now) for vote, share in weighed])


def _near(similarity: VoteSimilarity, weighed, now) -> np.ndarray:
    return similarity.near_centroid(*_columns_and_weights(similarity, weighed, now))


def _trust(weighed, now) -> float:
    weight = sum(share * weight_of(vote, now) for vote, share in weighed)
    return weight / (weight + PRIOR_VOTES)
