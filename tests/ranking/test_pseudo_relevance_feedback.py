"""Pseudo-relevance feedback: a topic's confident matches pull the papers on their
subject up, and push the papers that only share a word with the topic down."""

import dataclasses

import numpy as np
import pytest

from ranking import fusion
from ranking.fusion import FusionConfig, paper_scale, with_feedback
from tests.ranking_corpus import make_paper

# Four papers as unit vectors: 0 is the confident match, 1 is on its subject, 2 is about
# something else, 3 about a third thing.
EMBEDDINGS = np.array(
    [[1.0, 0.0, 0.0], [0.9, np.sqrt(1 - 0.81), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32
)
LEXICAL = np.array([[0.9, 0.1, 0.35, 0.0]], dtype=np.float32)  # paper 2 shares more words than paper 1
SEMANTIC = np.array([[0.8, 0.4, 0.45, 0.1]], dtype=np.float32)  # topic-to-paper, on the 0..1 scale


def first_fusion(config=fusion.DEFAULT):
    w = config.lexical_weight
    return (w * LEXICAL + (1 - w) * SEMANTIC).astype(np.float32)


def test_a_paper_on_the_confident_matchs_subject_overtakes_one_that_shares_words():
    before = first_fusion()
    assert before[0, 0] >= fusion.DEFAULT.feedback_from  # paper 0 is a confident match
    assert before[0, 2] > before[0, 1]
    after = with_feedback(before, SEMANTIC, EMBEDDINGS, [0])
    assert after[0, 1] > after[0, 2]
    assert list(np.argsort(-after[0])) == [0, 1, 2, 3]


def test_it_is_the_first_fusion_done_again_with_a_mixed_semantic_signal():
    config = fusion.DEFAULT
    after = with_feedback(first_fusion(), SEMANTIC, EMBEDDINGS, [0], config)
    near_the_match = paper_scale(EMBEDDINGS @ EMBEDDINGS[0])  # the only confident paper is the centroid
    mixed = (1 - config.feedback_weight) * SEMANTIC + config.feedback_weight * near_the_match
    expected = config.lexical_weight * LEXICAL + (1 - config.lexical_weight) * mixed
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)


def test_the_centroid_is_weighted_by_relevance():
    relevance = np.array([[0.9, 0.6, 0.0, 0.0]], dtype=np.float32)
    # Papers 2 and 3 are as close to each other match (an unweighted centroid would not
    # tell them apart), paper 3 to the more relevant one.
    embeddings = np.array([[1, 0, 0], [0, 1, 0], [0, 0.5, 0.866], [0.5, 0, 0.866]], dtype=np.float32)
    semantic = np.zeros_like(relevance)
    after = with_feedback(relevance, semantic, embeddings, [0])
    assert after[0, 3] > after[0, 2]


def test_a_topic_without_a_confident_match_is_left_alone():
    weak = first_fusion() * 0.5
    assert weak.max() < fusion.DEFAULT.feedback_from
    assert np.array_equal(with_feedback(weak, SEMANTIC, EMBEDDINGS, [0]), weak)


def test_filtered_out_papers_give_no_feedback_and_stay_out():
    relevance = first_fusion()
    relevance[0, 0] = -np.inf  # e.g. it has an excluded word: then nothing else is confident
    assert np.array_equal(with_feedback(relevance, SEMANTIC, EMBEDDINGS, [0]), relevance)

    relevance = first_fusion()
    relevance[0, 1] = -np.inf
    after = with_feedback(relevance, SEMANTIC, EMBEDDINGS, [0])
    assert after[0, 1] == -np.inf
    assert after[0, 2] != relevance[0, 2]  # the rest did get feedback


def test_only_the_given_topic_rows_change():
    # Row 1 stands for a topic made only of filters: every paper that passes them is 1.0.
    relevance = np.vstack([first_fusion(), np.ones((1, 4), dtype=np.float32)])
    semantic = np.vstack([SEMANTIC, np.zeros((1, 4), dtype=np.float32)])
    after = with_feedback(relevance, semantic, EMBEDDINGS, [0])
    assert np.array_equal(after[1], relevance[1])
    assert not np.array_equal(after[0], relevance[0])


@pytest.mark.parametrize("config", [FusionConfig(feedback_weight=0.0), FusionConfig(method="rrf")])
def test_switched_off(config):
    relevance = first_fusion()
    assert np.array_equal(with_feedback(relevance, SEMANTIC, EMBEDDINGS, [0], config), relevance)


# -- with the real model --------------------------------------------------------------

SEQUENCE_PARALLEL_PAPERS = [
    dict(
        key="sequence-parallel",
        title="Sequence Parallelism for Distributed Training of Long-Context Transformers",
        abstract="We split very long input sequences across GPUs and exchange attention keys and values "
        "between devices, so that distributed training of transformers scales to million-token contexts.",
    ),
    dict(
        key="same-subject",
        title="Splitting Long Sequences Across GPUs for Transformer Pretraining",
        abstract="Very long input sequences are split across GPUs, and the devices exchange attention keys "
        "and values so that transformers are pretrained on million-token contexts with less memory per GPU.",
    ),
    dict(
        key="shares-words",
        title="Load Balancing Loss for Mixture-of-Experts Routers",
        abstract="The router must distribute tokens evenly across experts. We compute the balancing loss over "
        "every sequence in the batch when training expert models, which changes how experts specialise.",
    ),
    dict(
        key="protein",
        title="Protein Structure Prediction with Deep Learning",
        abstract="We predict the three-dimensional structure of proteins from amino acid sequences with an "
        "attention-based network trained on solved structures.",
    ),
]


@pytest.fixture
def sequence_parallel_corpus(db, monkeypatch):
    from ranking import semantic
    from ranking.api import embed_papers

    monkeypatch.setattr(semantic, "_availability", None)
    assert semantic.is_available()
    papers = [make_paper(**spec) for spec in SEQUENCE_PARALLEL_PAPERS]
    embed_papers(papers)
    return papers


def test_feedback_ranks_the_paper_on_the_topics_subject_above_one_sharing_its_words(
    sequence_parallel_corpus, monkeypatch
):
    from ranking import selection
    from ranking.api import rank_topics

    for cut in ("STRONG_SHARE", "SUPPORTED_SHARE", "MATCH_FLOOR"):  # the order of every match, not only the strong
        monkeypatch.setattr(selection, cut, 0.0)
    topic = "sequence parallelism for distributed training"
    with_it = [r.paper.key for r in rank_topics([topic])]
    monkeypatch.setattr(fusion, "DEFAULT", dataclasses.replace(fusion.DEFAULT, feedback_weight=0.0))
    without = [r.paper.key for r in rank_topics([topic])]

    assert without[:3] == ["sequence-parallel", "shares-words", "same-subject"]
    assert with_it[:3] == ["sequence-parallel", "same-subject", "shares-words"]


def test_topics_of_filters_only_still_take_every_paper_that_passes(corpus):
    from ranking import index, ranker

    scores = ranker.score_topics(index.get_index(), [ranker.TopicRef("cat:cs.CV"), ranker.TopicRef("video")])
    in_cv = [row for row, categories in enumerate(index.get_index().categories) if "cs.cv" in categories]
    assert in_cv and np.all(scores.relevance[0, in_cv] == 1.0)
