"""The "why" phrase, the words a paper matched, on the paper's text as written."""

from ranking.explain import matched_phrase, topic_reason
from ranking.lexical import LexicalIndex


def test_the_run_with_most_topic_words_wins_the_earliest_among_equals():
    text = "We study state space models. Structured state-space models of long sequences scale."
    assert matched_phrase("state space models", text) == "state space models"
    assert matched_phrase("efficient training", "Training is efficient; efficient training of transformers.") == (
        "efficient training"
    )


def test_a_run_goes_on_over_stopwords_and_hyphens_not_punctuation():
    assert matched_phrase("state space models", "Models of state, then space: models.") == "Models of state"
    text = "Large language models with long context windows; long-context language modelling of the corpus."
    assert matched_phrase("long context language models", text) == "long-context language modelling"


def test_accented_text_and_no_topic_word():
    text = "Réseaux: graph neural networks for molécules, and neural graph networks."
    assert matched_phrase("graph neural networks", text) == "graph neural networks"
    assert matched_phrase("video understanding", "Nothing here.") == ""


def test_the_reason_names_the_phrase_covering_most_of_the_topic():
    reason = topic_reason(
        "long context language models",
        ["language", "models"],
        True,
        "Long-context models",
        "We train language models on long context data.",
    )
    assert (
        reason
        == "Matches your topic “long context language models”: its abstract says “language models on long context”"
    )
    assert topic_reason("long context language models", [], True, "Unrelated title", "Nothing of it.") == (
        "Close in meaning to your topic “long context language models”"
    )


def test_has_terms_keeps_the_topic_order_and_leaves_out_unknown_terms():
    index = LexicalIndex(
        ["Sequence parallelism", "Video understanding"],
        ["We split long sequences across devices.", "Models that watch videos."],
    )
    assert index.has_terms(0, ["devic", "sequenc", "video", "nosuchterm"]) == ["devic", "sequenc"]
    assert index.has_terms(1, ["sequenc", "video", "video"]) == ["video", "video"]
    assert index.has_terms(1, []) == []
