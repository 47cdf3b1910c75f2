"""Which of a reader's candidates are strong matches, and in what order they are shown.

A digest carries only papers that are a confident match for one of the reader's
topics: never filler to reach a count. A paper is a strong match for a topic when

- its fused relevance is at least ``STRONG_SHARE`` of the topic's best this period, or
- it is at least ``SUPPORTED_SHARE`` of the best and one signal on its own backs it:
  its lexical score is at least ``LEXICAL_SUPPORT`` of the topic's best lexical score,
  or its semantic score at least ``SEMANTIC_SUPPORT`` of the best semantic score;

and, whatever the shares, its fused relevance is at least ``MATCH_FLOOR`` or its meaning
alone is close (``MEANING_FLOOR``: a topic in other words than the paper's). Shares of the
topic's own best, because how high relevance goes differs by topic (a four-word topic
with rare words scores higher than "video understanding"); the per-signal support keeps
papers one signal is sure of (a benchmark paper that says "evaluating" and "benchmark"
in other words than the model's) and drops those that merely share common words. The
floor because shares alone cannot tell a period with nothing for a topic: its best
paper was "strong" for being the best of a weak lot, and so were its neighbours. Before
the floor, the judged topics ranked with their relevant papers taken out
(``python -m bench.empty_weeks``) were sent 204 papers, against 223 with them in.
Calibrated on the judged topics (results in bench/README.md).

A paper is also a strong match when it is very like one of the reader's example papers
(``EXAMPLE_LIKENESS``; "more like these"): those take their turn as a group of their
own, and are listed after the topics' papers (the digest shows them in a section of
their own).

Several topics share the digest fairly: each topic's strong matches are taken in
turn (round robin, the topic with the best match first), and a paper that is a
near-duplicate of one already picked (same title, or embeddings almost identical:
another version of the same work) is left out.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

import numpy as np

STRONG_SHARE = 0.5
SUPPORTED_SHARE = 0.4
LEXICAL_SUPPORT = 0.45
SEMANTIC_SUPPORT = 0.75
# The highest floor that keeps every grade-2 paper the dev topics were shown a strong match
# (and 87 of the 88 of all the judged sets); bench/README.md has the grid.
MATCH_FLOOR = 0.35
# A paper this close in meaning is confident without shared words, whatever its fused
# relevance (the fused mean of a match in other words is about half its semantic score).
# Above every paper the judged sets' empty weeks sent by meaning alone (at most 0.57: the
# sentence model puts unrelated papers of one field up to there).
MEANING_FLOOR = 0.6
# Lexical only (no sentence model): word overlap alone separates relevant papers less
# sharply, so a lower share of the best, and the floor measured the same way lexical only.
LEXICAL_ONLY_SHARE = 0.35
LEXICAL_ONLY_FLOOR = 0.25
EXAMPLE_LIKENESS = 0.8  # similarity (0..1, VoteSimilarity.alike) to an example paper that makes a strong match
DUPLICATE_COSINE = 0.92  # sentence embeddings: distinct papers here stay under 0.8
DUPLICATE_TERMS = 0.8  # shared share of index terms (Jaccard), when ranking is lexical only


@dataclass(frozen=True)
class TopicCuts:
    """Per topic (one entry per topic row): the relevance a strong match needs, the
    lower relevance a supported one needs, and the per-signal support levels."""

    strong: np.ndarray
    supported: np.ndarray
    lexical: np.ndarray
    semantic: np.ndarray | None


def topic_cuts(relevance: np.ndarray, lexical: np.ndarray, semantic: np.ndarray | None) -> TopicCuts:
    """The cuts of every topic row of a (topics x papers) score matrix, in one pass."""
    if relevance.shape[1] == 0:
        empty = np.full(relevance.shape[0], np.inf)
        return TopicCuts(empty, empty, empty, None if semantic is None else empty)
    allowed = np.isfinite(relevance)
    best = np.where(allowed, relevance, 0.0).max(axis=1)
    best_lexical = np.where(allowed, lexical, 0.0).max(axis=1)
    if semantic is None:
        cut = LEXICAL_ONLY_SHARE * best
        return TopicCuts(strong=cut, supported=cut, lexical=np.full_like(cut, np.inf), semantic=None)
    best_semantic = np.where(allowed, semantic, 0.0).max(axis=1)
    return TopicCuts(
        strong=STRONG_SHARE * best,
        supported=SUPPORTED_SHARE * best,
        # A topic no paper matches in words (or in meaning) has no support from that signal.
        lexical=np.where(best_lexical > 0, LEXICAL_SUPPORT * best_lexical, np.inf),
        semantic=np.where(best_semantic > 0, SEMANTIC_SUPPORT * best_semantic, np.inf),
    )


def strong_mask(cuts: TopicCuts, rows, relevance, lexical, semantic) -> np.ndarray:
    """(len(rows) x papers) booleans: is each paper a strong match for each of the
    reader's topics. ``relevance`` etc. are the score rows of those topics."""
    rows = np.asarray(rows, dtype=np.int64)
    strong = relevance >= cuts.strong[rows, None]
    support = lexical >= cuts.lexical[rows, None]
    if cuts.semantic is None or semantic is None:
        confident = relevance >= LEXICAL_ONLY_FLOOR
    else:
        support |= semantic >= cuts.semantic[rows, None]
        confident = (relevance >= MATCH_FLOOR) | (semantic >= MEANING_FLOOR)
    return (strong | ((relevance >= cuts.supported[rows, None]) & support)) & confident


def best_strong_topic(mask: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """Per paper, the reader's topic (position in their list) it is the strongest match
    for among those it matches strongly; -1 where it matches none."""
    if mask.shape[0] == 0:
        return np.full(mask.shape[1], -1, dtype=np.int64)
    masked = np.where(mask, relevance, -np.inf)
    best = masked.argmax(axis=0)
    return np.where(mask.any(axis=0), best, -1)


def interleave(
    rows: np.ndarray, scores: np.ndarray, groups: np.ndarray, newest: np.ndarray, room: int, same, later=None
):
    """Up to ``room`` of ``rows``: each group (topic) in turn, its best first, the group
    with the best paper first; a row ``same(row, picked)`` calls a near-duplicate of a
    picked one is skipped. ``scores``, ``groups``, ``newest`` (and ``later``: booleans,
    rows that come after the group's others whatever their score) are per row of ``rows``."""
    if room <= 0 or len(rows) == 0:
        return []
    # Sorted by group, and within a group best first (among equals the newest); only
    # the first few of each group can be shown, so only those reach the Python loop.
    tier = np.zeros(len(rows), dtype=np.int8) if later is None else np.asarray(later, dtype=np.int8)
    order = np.lexsort((-newest, -scores, tier, groups))
    starts = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]])
    ends = np.r_[starts[1:], len(order)]
    keep = room * 2 + 4  # room for a few near-duplicates skipped
    queues = [deque(order[start : min(end, start + keep)].tolist()) for start, end in zip(starts, ends, strict=True)]
    queues.sort(key=lambda queue: (tier[queue[0]], -scores[queue[0]], -newest[queue[0]]))
    picked: list[int] = []
    while len(picked) < room and any(queues):
        for queue in queues:
            while queue:
                row = int(rows[queue.popleft()])
                if not same(row, picked):
                    picked.append(row)
                    break
            if len(picked) >= room:
                break
    return picked


def near_duplicates(index):
    """``same(row, picked_rows)``: whether a paper is another version of one picked."""
    normalised = {}

    def title(row):
        if row not in normalised:
            normalised[row] = re.sub(r"[^a-z0-9]+", " ", index.titles[row].lower()).strip()
        return normalised[row]

    def same(row, picked) -> bool:
        if not picked:
            return False
        if any(title(row) == title(other) and title(row) for other in picked):
            return True
        if index.embeddings is not None:
            cosine = index.embeddings[picked] @ index.embeddings[row]
            return bool((cosine >= DUPLICATE_COSINE).any())
        terms = index.lexical.weights
        this = set(terms.indices[terms.indptr[row] : terms.indptr[row + 1]].tolist())
        for other in picked:
            theirs = set(terms.indices[terms.indptr[other] : terms.indptr[other + 1]].tolist())
            if this and len(this & theirs) >= DUPLICATE_TERMS * len(this | theirs):
                return True
        return False

    return same


def like_examples(similarity, example_paper_ids) -> tuple[np.ndarray, np.ndarray]:
    """Per paper: is it a strong match by its likeness to one of the reader's example
    papers ("more like these"), and which example (its column in ``similarity``, the
    call's ``VoteSimilarity``; -1 for none)."""
    size = similarity.index.size
    cols = [similarity.column_of[int(i)] for i in example_paper_ids if int(i) in similarity.column_of]
    if not cols or not size:
        return np.zeros(size, dtype=bool), np.full(size, -1, dtype=np.int64)
    block = similarity.alike[:, cols]
    which = block.argmax(axis=1)
    closest = block[np.arange(size), which]
    strong = closest >= EXAMPLE_LIKENESS
    return strong, np.where(strong, np.asarray(cols)[which], -1)


def order_with_votes(
    text: np.ndarray, voted: np.ndarray, strong_by_text: np.ndarray, like_share: float, brought=None
) -> np.ndarray:
    """What orders a reader's papers once their votes moved ``text`` (relevance by the
    text) to ``voted``: a paper the text makes strong keeps the text's relevance, lowered
    by what the dislikes took in full and raised by only ``like_share`` of what the
    likes added (a near-tie broken, a clear gap kept); the others, what the votes say
    (``brought``, when what brings papers in differs from ``voted``)."""
    raised = np.maximum(voted - text, 0.0) * like_share
    return np.where(strong_by_text, np.minimum(voted, text) + raised, voted if brought is None else brought)
