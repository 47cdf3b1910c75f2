"""Only strong matches, each topic its share, near-duplicates collapsed (``ranking.selection``)."""

import numpy as np
import pytest

from ranking import selection, semantic
from ranking.api import rank_topics
from tests.ranking_corpus import make_paper

STATE_SPACE = [
    dict(
        key="s4",
        title="Efficiently Modeling Long Sequences with Structured State Space Models",
        abstract="State space models (SSMs) are a promising alternative to attention for long sequences. We "
        "structure the state matrix so that the state space model runs in near-linear time on long-range tasks.",
    ),
    dict(
        key="mamba",
        title="Selective State Space Models for Language Modeling",
        abstract="We make the parameters of a state space model depend on the input, so that the recurrent "
        "state can select what to remember; the selective SSM matches transformers on language modeling.",
    ),
    dict(
        key="starcraft",
        title="StarCraft II: A New Challenge for Reinforcement Learning",
        abstract="A game environment where agents observe a partial state of the map and act in a large action "
        "space; baseline models of agents reach only modest scores against the built-in opponents.",
    ),
    dict(
        key="beam-search",
        title="Diverse Beam Search for Neural Sequence Models",
        abstract="Beam search explores the output space of sequence models greedily; a diversity term between "
        "groups of beams yields different captions and translations in the same decoding budget.",
    ),
]


def _state_space():
    papers = [make_paper(**spec) for spec in STATE_SPACE]
    from ranking.api import embed_papers

    embed_papers(papers)
    return papers


def test_a_topic_gets_only_its_strong_matches_never_filler(db, mode):
    _state_space()
    keys = [r.paper.key for r in rank_topics(["state space models"], limit=10)]
    assert set(keys) == {"s4", "mamba"}  # two, not ten: StarCraft shares "state" and "space", no more


def test_several_topics_each_get_their_share(corpus):
    ranked = rank_topics(["video understanding", "language model inference"], limit=2)
    assert {r.topic for r in ranked} == {"video understanding", "language model inference"}


def test_topics_are_interleaved_best_topic_first(corpus):
    ranked = rank_topics(["video", "protein structure"], limit=10)
    topics = [r.topic for r in ranked]
    assert topics[:2] in (["video", "protein structure"], ["protein structure", "video"])
    assert topics[0] != topics[1]


def test_a_week_with_nothing_strong_gives_nothing(corpus):
    assert rank_topics(["lattice quantum chromodynamics"]) == []


def test_a_week_without_the_topics_papers_gives_nothing_even_where_words_are_shared(db, monkeypatch):
    """The best of a weak lot is not a strong match: StarCraft's "state" and "space" and
    the beam search's "space" and "models" are all this week has for the topic. (With the
    sentence model, the default: word overlap alone cannot tell two shared words of three
    from a match.)"""
    monkeypatch.setattr(semantic, "_availability", None)
    assert semantic.is_available()
    papers = _state_space()
    assert {r.paper.key for r in rank_topics(["state space models"])} == {"s4", "mamba"}
    for paper in papers[:2]:
        paper.delete()
    assert rank_topics(["state space models"]) == []


def test_another_version_of_a_paper_is_collapsed(db, mode):
    spec = STATE_SPACE[0]
    make_paper(key="s4-v1", title=spec["title"], abstract=spec["abstract"], upvotes=1)
    make_paper(key="s4-v2", title=spec["title"] + " (v2)", abstract=spec["abstract"], upvotes=50)
    from papers.models import Paper
    from ranking.api import embed_papers

    embed_papers(list(Paper.objects.all()))
    assert [r.paper.key for r in rank_topics(["structured state space models"])] == ["s4-v2"]


def test_cuts_are_shares_of_each_topics_best_with_per_signal_support():
    relevance = np.array(
        [[1.0, 0.55, 0.45, 0.45, 0.45, 0.3], [0.34, 0.2, 0.0, 0.0, 0.0, 0.0], [0.6, 0.34, 0.3, 0.33, 0.0, 0.0]]
    )
    lexical = np.array([[1.0, 0.2, 0.5, 0.1, 0.1, 0.9], [0.34, 0.2, 0.0, 0.0, 0.0, 0.0], [0.6, 0.6, 0.6, 0, 0, 0]])
    semantic = np.array([[1.0, 0.5, 0.1, 0.8, 0.3, 0.9], [0.34, 0.2, 0.0, 0.0, 0.0, 0.0], [0.6, 0.5, 0.5, 0.66, 0, 0]])
    cuts = selection.topic_cuts(relevance, lexical, semantic)
    mask = selection.strong_mask(cuts, [0, 1, 2], relevance, lexical, semantic)
    # half the best; 0.4 of it with words or meaning backing it; never below 0.4 of the best
    assert mask[0].tolist() == [True, True, True, True, False, False]
    # and never under MATCH_FLOOR (0.35), whatever the shares: a weak best is no strong
    # match, and neither are a topic's supported matches at 0.34 and 0.3 of a best of 0.6,
    # unless the meaning alone is close (0.66 >= MEANING_FLOOR: a match in other words)
    assert mask[1].tolist() == [False] * 6
    assert mask[2].tolist() == [True, False, False, True, False, False]


def test_interleave_takes_each_group_in_turn_and_skips_duplicates():
    rows = np.array([10, 11, 12, 13, 14])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    groups = np.array([0, 0, 0, 1, 1])
    newest = np.zeros(5)
    picked = selection.interleave(rows, scores, groups, newest, 4, lambda row, picked: False)
    assert picked == [10, 13, 11, 14]
    no_11 = selection.interleave(rows, scores, groups, newest, 4, lambda row, picked: row == 11)
    assert no_11 == [10, 13, 12, 14]


def test_votes_break_near_ties_among_the_texts_strong_matches_and_decide_the_border():
    text = np.array([0.80, 0.79, 0.60, 0.30])
    voted = np.array([0.80, 0.89, 0.50, 0.45])  # liked-like: +0.10; disliked-like: -0.10; borderline +0.15
    strong = np.array([True, True, True, False])
    order = selection.order_with_votes(text, voted, strong, like_share=0.2)
    assert order[1] > order[0]  # 0.01 behind, lifted 0.10: a near-tie broken
    assert order[1] == pytest.approx(0.79 + 0.02)
    assert order[2] == pytest.approx(0.50)  # a dislike counts in full
    assert order[3] == pytest.approx(0.45)  # not strong by the text: the votes decide
    lifted_far = selection.order_with_votes(np.array([0.8, 0.6]), np.array([0.8, 0.8]), np.array([True, True]), 0.2)
    assert lifted_far[1] < lifted_far[0]  # a clear gap stays
