"""Topics' scores are kept per paper index: the same numbers, computed once, in bounded memory."""

import dataclasses

import numpy as np

from ranking import fusion, index, ranker

TOPICS = ["video understanding", '"speech recognition" -noise', "cat:cs.CV", "diffusion models author:Ho"]


def test_kept_scores_are_the_scores(corpus, monkeypatch):
    paper_index = index.get_index()
    refs = [ranker.TopicRef(q) for q in TOPICS]
    first = ranker.score_topics(paper_index, refs)
    computed = []
    real = ranker.compute_topic_scores
    monkeypatch.setattr(
        ranker, "compute_topic_scores", lambda i, r, c: computed.append([x.query for x in r]) or real(i, r, c)
    )

    mixed = [ranker.TopicRef("protein folding"), *reversed(refs)]
    again = ranker.score_topics(paper_index, mixed)
    assert computed == [["protein folding"]]  # only the new topic was scored
    fresh = real(paper_index, mixed, fusion.DEFAULT)
    for name in ("lexical", "relevance", "semantic"):
        kept, recomputed = getattr(again, name), getattr(fresh, name)
        assert (kept is None) == (recomputed is None)
        if kept is not None:  # equal up to float32 rounding (BLAS sums in another order per shape)
            np.testing.assert_allclose(kept, recomputed, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(again.relevance[1:], first.relevance[::-1])

    other = dataclasses.replace(fusion.DEFAULT, feedback_weight=0.0)  # another configuration: its own scores
    ranker.score_topics(paper_index, refs, other)
    assert computed[-1] == TOPICS


def test_kept_scores_stay_within_their_bytes(corpus, monkeypatch):
    paper_index = index.get_index()
    row_bytes = 3 * 4 * paper_index.size
    monkeypatch.setattr(index, "TOPIC_SCORE_BYTES", 5 * row_bytes)
    for n in range(12):
        ranker.score_topics(paper_index, [ranker.TopicRef(f"topic number {n}")])
    assert len(paper_index.topic_scores) == 5
    assert [query for _, query in paper_index.topic_scores] == [f"topic number {n}" for n in range(7, 12)]
