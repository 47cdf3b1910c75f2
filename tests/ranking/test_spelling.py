"""British and American spellings of a word match."""

import pytest

from ranking.api import rank_topics
from ranking.lexical import LexicalIndex, index_terms, stem
from ranking.spelling import american
from tests.ranking_corpus import make_paper


@pytest.mark.parametrize(
    ("british", "us"),
    [
        ("optimisation", "optimization"),
        ("optimisers", "optimizers"),
        ("generalise", "generalize"),
        ("tokenisation", "tokenization"),
        ("quantised", "quantized"),
        ("summarising", "summarizing"),
        ("behavioural", "behavioral"),
        ("neighbourhoods", "neighborhoods"),
        ("centred", "centered"),
        ("defence", "defense"),
        ("artefacts", "artifacts"),
        ("modelling", "modeling"),
        ("analysed", "analyzed"),
        ("analysing", "analyzing"),
    ],
)
def test_british_and_american_forms_have_one_stem(british, us):
    assert stem(british) == stem(us)


@pytest.mark.parametrize(
    "word",
    [
        "supervised",
        "unsupervised",
        "precise",
        "exercise",
        "promise",
        "expertise",
        "otherwise",
        "surprise",
        "revised",
        "improvisation",
    ]
    + ["noise", "denoising", "pairwise", "layerwise", "raised", "hour", "four", "contour", "analysis", "crises"],
)
def test_words_that_are_the_same_in_both_are_left_alone(word):
    assert american(word) == word


def test_related_forms_still_share_a_stem():
    assert stem("supervised") == stem("supervision")
    assert stem("precise") == stem("precision")
    assert stem("denoising") == stem("denoise")


def test_a_british_topic_finds_an_american_paper_and_back():
    index = LexicalIndex(
        ["Tokenizer optimization for speech", "Neighbourhood sampling for graphs", "Cooking"],
        ["We optimize tokenizers.", "Graph neural networks sample a node's neighbourhood.", "Recipes."],
    )
    scores = index.scores([index_terms("optimisation of tokenisers"), index_terms("neighborhood sampling")])
    assert scores[0].argmax() == 0 and scores[0, 0] > 0.5
    assert scores[1].argmax() == 1 and scores[1, 1] > 0.5


def test_rank_topics_with_british_spelling(db, mode):
    from ranking.api import embed_papers

    papers = [
        make_paper(key="us", title="Quantization-Aware Training of Tokenizers", abstract="We quantize tokenizers."),
        make_paper(key="other", title="Protein Folding", abstract="Structures of proteins from sequences."),
    ]
    embed_papers(papers)
    ranked = rank_topics(["quantisation of tokenisers"])
    assert [r.paper.key for r in ranked] == ["us"]
    assert set(ranked[0].matched_terms) == {"quantisation", "tokenisers"}
