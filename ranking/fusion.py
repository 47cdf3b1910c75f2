"""Fusing the lexical and semantic scores, the relevance floor and the trending prior.

Both signals are first put on an absolute 0..1 scale that means the same for every
topic (so a floor can say "weak match" without looking at the other papers):

- lexical: BM25F divided by the topic's best possible score (see ``LexicalIndex.scores``);
- semantic: cosine similarity stretched between "unrelated" (``cosine_zero``: two
  papers of one field that have nothing to do with each other sit around 0.2-0.25
  for this model) and "same subject" (``cosine_one``).

The fused relevance is a weighted mean of the two. A weighted mean of calibrated
scores keeps the absolute scale, which reciprocal-rank fusion throws away (RRF gives
the best paper of an unrelated topic the same fused score as the best paper of a
well-covered one, so no floor can be put on it); ``bench/ranking_quality.py --fusion
rrf`` measures the alternative.

Measured with ``bench/ranking_quality.py`` (nDCG@10, dev topics / the ten extra ones;
before the acronym matching of ``acronyms``, which raised the first to 0.966 / 0.865):
weighted mean with feedback 0.953 / 0.857, weighted mean alone 0.941 / 0.849, RRF
0.886 / 0.826, lexical alone 0.909 / 0.830, plain BM25 0.899 / 0.725. The weights and
the cosine bounds were chosen on the dev topics together with the ten more topics
judged by hand (``bench/ranking_extra_topics.json``), preferring settings good on both
over the best on either, and putting "unrelated" at the cosine unrelated papers really
have, so that one shared common word plus a "same field" cosine stays under the floor.

Pseudo-relevance feedback (Rocchio, in the embedding space): the papers a topic
matches with confidence (fused relevance >= ``feedback_from``, a strong match on both
scales) say what the topic means in this field better than its few words do. The
semantic signal becomes a mix of "close to the topic's words" and "close to those
papers" (their centroid, weighted by relevance, on the paper-to-paper scale), and the
two signals are fused again. A paper that shares only a word or two with the topic
but is about something else (a load-balancing paper that mentions "parallel" and
"distribute" for *sequence parallelism for distributed training*) falls behind one
on the confident matches' subject. A topic with no confident match is left as it
was, so feedback never invents relevance for a topic the papers do not cover.
Measured: dev topics 0.941 -> 0.953, the ten extra topics 0.849 -> 0.857; the
results stay within about 0.01 on both sets for ``feedback_from`` 0.6-0.8 and
``feedback_weight`` 0.2-0.4 (below 0.6, a wrong paper starts to count as confident).
What it cannot do: bring in a paper that neither signal puts near the topic or its
confident matches (the GPU data-loading paper judged relevant to sequence
parallelism ranks 17th or lower by every cosine here), so that topic ties plain BM25.

The trending prior (upvotes, log-scaled against the most upvoted paper in the set)
is added only to papers already above the floor, with a small weight: it reorders
relevant papers, it never makes an irrelevant one relevant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

# Paper-to-paper cosine scale (0 = unrelated, 1 = same subject). Two papers of one field
# are closer than a short topic and a paper, hence other bounds than the topic's.
PAPER_COSINE_ZERO, PAPER_COSINE_ONE = 0.25, 0.75


@dataclass(frozen=True)
class FusionConfig:
    lexical_weight: float = 0.5
    cosine_zero: float = 0.20
    cosine_one: float = 0.70
    floor: float = 0.15  # fused relevance below this is a weak match: left out
    lexical_only_floor: float = 0.20
    trending_weight: float = 0.05
    feedback_from: float = 0.6  # fused relevance of a confident match (pseudo-relevance feedback)
    feedback_weight: float = 0.3  # share of the semantic signal given to those matches' centroid
    method: str = "weighted"  # or "rrf" (measured in the bench, not the default)
    rrf_k: int = 60


DEFAULT = FusionConfig()


def semantic_scale(cosine: np.ndarray, config: FusionConfig = DEFAULT) -> np.ndarray:
    return _stretch(cosine, config.cosine_zero, config.cosine_one)


def paper_scale(cosine: np.ndarray) -> np.ndarray:
    """Paper-to-paper cosine on the 0..1 scale."""
    return _stretch(cosine, PAPER_COSINE_ZERO, PAPER_COSINE_ONE)


def _stretch(cosine: np.ndarray, zero: float, one: float) -> np.ndarray:
    """(cosine - zero) / (one - zero), clipped to 0..1, as float32; in place on a copy
    because (topics x papers) matrices are large and np.clip on scalars is slow."""
    scaled = np.array(cosine, dtype=np.float32)
    scaled -= np.float32(zero)
    scaled *= np.float32(1.0 / (one - zero))
    np.minimum(scaled, np.float32(1.0), out=scaled)
    np.maximum(scaled, np.float32(0.0), out=scaled)
    return scaled


def fuse(lexical: np.ndarray, cosine: np.ndarray | None, config: FusionConfig = DEFAULT) -> np.ndarray:
    """(topics x papers) relevance in 0..1 (roughly), from the two signals."""
    if cosine is None:
        return lexical
    semantic = semantic_scale(cosine, config)
    if config.method == "rrf":
        return _reciprocal_rank_fusion(lexical, semantic, config)
    w = config.lexical_weight
    return (w * lexical + (1.0 - w) * semantic).astype(np.float32)


def with_feedback(
    relevance: np.ndarray,
    semantic: np.ndarray,
    embeddings: np.ndarray,
    topic_rows,
    config: FusionConfig = DEFAULT,
) -> np.ndarray:
    """``relevance`` with the ``topic_rows`` fused again with pseudo-relevance feedback
    (see the module notes); the other rows (topics made only of filters) are left alone.

    ``relevance`` is the first fusion with the topics' filters applied (-inf where they
    rule a paper out): only papers that passed them count as feedback, and the others
    stay out. ``semantic`` is the topics' cosine on the 0..1 scale. A topic with no
    confident match comes back unchanged. Fusing again only moves the semantic part:
    ``relevance + (1 - lexical_weight) * feedback_weight * (near_matches - semantic)``."""
    topic_rows = np.asarray(topic_rows, dtype=np.int64)
    if config.method != "weighted" or config.feedback_weight <= 0 or topic_rows.size == 0:
        return relevance
    first = relevance[topic_rows]
    where_row, where_col = np.nonzero(first >= config.feedback_from)  # -inf never is
    if where_row.size == 0:
        return relevance
    confident = np.unique(where_row)
    weights = sparse.csr_matrix(
        (first[where_row, where_col], (np.searchsorted(confident, where_row), where_col)),
        shape=(confident.size, first.shape[1]),
    )
    centroids = np.asarray(weights @ embeddings, dtype=np.float32)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    shift = paper_scale(centroids @ embeddings.T)
    rows = topic_rows[confident]
    shift -= semantic[rows]
    shift *= np.float32((1.0 - config.lexical_weight) * config.feedback_weight)
    result = relevance.copy()
    result[rows] += shift  # -inf stays -inf
    return result


def _reciprocal_rank_fusion(lexical, semantic, config):
    """RRF for comparison: scores by rank only (scaled so the top paper of each signal
    gives 0.5), with the floor applied to the calibrated mean instead."""

    def ranks(matrix):
        order = np.argsort(-matrix, axis=1, kind="stable")
        rank = np.empty_like(order)
        rows = np.arange(matrix.shape[0])[:, None]
        rank[rows, order] = np.arange(matrix.shape[1])[None, :]
        return rank

    k = config.rrf_k
    fused = (k + 1) / 2 * (1.0 / (k + 1 + ranks(lexical)) + 1.0 / (k + 1 + ranks(semantic)))
    mean = config.lexical_weight * lexical + (1 - config.lexical_weight) * semantic
    return np.where(mean >= floor_for(True, config), fused, 0.0).astype(np.float32)


def floor_for(semantic_on: bool, config: FusionConfig = DEFAULT) -> float:
    return config.floor if semantic_on else config.lexical_only_floor


def trending_prior(upvotes: np.ndarray) -> np.ndarray:
    """0..1 popularity: log(1 + upvotes) over the largest in the set."""
    if upvotes.size == 0:
        return upvotes
    logged = np.log1p(np.maximum(upvotes, 0))
    top = logged.max()
    return (logged / top).astype(np.float32) if top > 0 else np.zeros_like(logged, dtype=np.float32)
