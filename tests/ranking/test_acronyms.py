"""Acronyms the papers define match their long forms, both ways."""

import pytest

from ranking.acronyms import Acronyms, definitions_in
from ranking.api import rank_topics
from ranking.lexical import LexicalIndex, index_terms
from tests.ranking_corpus import make_paper


def test_definitions_found_as_papers_write_them():
    text = (
        "We study Multimodal Large Language Models (MLLMs) and Mixture-of-Experts (MoE) layers with a "
        "key-value (KV) cache. Results are in the appendix (Table 2), see (iii), in (2024) and (NeRF)."
    )
    assert definitions_in(text) == [
        ("MLLMs", "Multimodal Large Language Models"),
        ("MoE", "Mixture-of-Experts"),
        ("KV", "key-value"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a fast video model (XYZ) for clips",  # its letters are not in the words before it
        "speech recognition (asr) models",  # no capitals: not an acronym
        "as in prior work (Smith) we train",  # one capital: a name
    ],
)
def test_no_definition_where_there_is_none(text):
    assert definitions_in(text) == []


def test_definitions_stop_at_the_sentence_before():
    assert definitions_in("We propose it. Quality Assessment (QA) is hard.") == [("QA", "Quality Assessment")]


def expand(acronyms, text):
    return acronyms.expansions(text, index_terms(text))


def test_most_common_definition_wins_and_expansions_go_both_ways():
    acronyms = Acronyms.of_texts(
        [
            "Large language models (LLMs) are big.",
            "large language models (LLMs) again",
            "Lifelong learning machines (LLMs) differ.",
        ],
        index_terms,
    )
    assert acronyms.definitions == {"llm": ("larg", "languag", "model")}
    assert expand(acronyms, "a fast LLM") == ["larg", "languag", "model", "larg languag", "languag model"]
    assert expand(acronyms, "fast large language model inference") == ["llm"]
    assert expand(acronyms, "nothing to add") == []
    # Once per field, however often the acronym occurs.
    assert expand(acronyms, "LLM after LLM after LLMs") == expand(acronyms, "LLM")


def test_only_acronyms_written_in_capitals_expand():
    acronyms = Acronyms.of_texts(["Contrastive language-image pretraining (CLIP) aligns them."], index_terms)
    assert acronyms.definitions == {"clip": ("contrast", "languag", "imag", "pretrain")}
    assert expand(acronyms, "CLIP features for retrieval")[:4] == ["contrast", "languag", "imag", "pretrain"]
    assert expand(acronyms, "we cut videos into short clips") == []


def test_an_acronym_in_one_title_matches_the_long_form_another_paper_defines():
    index = LexicalIndex(
        ["MiniThing: a GPT-level MLLM on your phone", "A survey of models", "Cooking"],
        [
            "It runs fast on phones.",
            "We review multimodal large language models (MLLMs) and how to train them.",
            "Recipes.",
        ],
    )
    scores = index.scores([index_terms("multimodal large language models")])[0]
    assert scores[0] > 0.3  # matched through the acronym in its title
    assert scores[2] == 0


def test_acronyms_count_only_where_some_paper_defines_them():
    index = LexicalIndex(["MiniThing: a GPT-level MLLM on your phone", "Cooking"], ["It runs fast.", "Recipes."])
    assert index.scores([index_terms("multimodal large language models")])[0, 0] == 0


@pytest.fixture
def mllm_papers(db, mode):
    """One paper defines MLLM, one writes only the acronym, one only the long form, one
    neither; stored with embeddings in the semantic mode."""
    from ranking.api import embed_papers

    embed_papers(
        [
            make_paper(
                key="definer",
                title="A Survey of Vision and Language",
                abstract="Multimodal large language models (MLLMs) read images and text together.",
            ),
            make_paper(
                key="acronym", title="Pruning an MLLM for Phones", abstract="We prune the model to fit a phone."
            ),
            make_paper(
                key="long", title="Pruning Multimodal Large Language Models", abstract="We prune them for phones."
            ),
            make_paper(key="plain", title="Pruning CNNs for Phones", abstract="We prune the network to fit a phone."),
        ]
    )


def test_topic_in_long_form_ranks_the_paper_written_with_the_acronym_first(mllm_papers):
    """Through the real ranking: lexical alone and with the semantic model."""
    keys = [r.paper.key for r in rank_topics(["pruning multimodal large language models"])]
    assert "acronym" in keys
    assert "plain" not in keys[: keys.index("acronym") + 1]


def test_text_outside_the_index_gets_the_same_expansions_as_its_rows():
    """A liked paper that is not in this index is compared by its text (lexical mode)."""
    index = LexicalIndex(
        ["A survey of models", "Cooking"],
        ["We review multimodal large language models (MLLMs).", "Recipes."],
    )
    vector = index.text_vector("A tiny MLLM")
    assert vector[0, index.vocabulary["multimod"]] > 0
    assert index.similarity_to(vector)[0, 0] > 0.2


def test_a_paper_keeps_its_own_meaning_of_an_acronym():
    texts = [
        "Anomaly detection (AD) in logs.",
        "Anomaly detection (AD) for video.",
        "Anomaly detection (AD) in graphs.",
        "AD from brain scans. Alzheimer disease (AD) affects memory.",
    ]
    acronyms = Acronyms.of_texts(texts, index_terms)
    assert acronyms.definitions["ad"] == ("anomali", "detect")  # lent to papers that do not say
    assert acronyms.own[3] == {"ad": ("alzheim", "diseas")}
    title = "Early AD Screening"
    assert "diseas" in acronyms.expansions(title, index_terms(title), acronyms.own[3])
    assert "anomali" not in acronyms.expansions(title, index_terms(title), acronyms.own[3])
    assert "anomali" in acronyms.expansions(title, index_terms(title))  # a paper that does not define it


def test_an_acronym_without_a_clear_meaning_is_not_lent():
    texts = [
        "Continual learning (CL) forgets.",
        "Continual learning (CL) again.",
        "Contrastive learning (CL) pulls pairs together.",
        "Contrastive learning (CL) pushes negatives apart.",
    ]
    acronyms = Acronyms.of_texts(texts, index_terms)
    assert "cl" not in acronyms.definitions
    title = "Scaling CL to Video"
    assert acronyms.expansions(title, index_terms(title)) == []
    assert "continu" in acronyms.expansions(title, index_terms(title), acronyms.own[0])


def test_in_the_index_the_papers_own_definition_decides_what_it_matches():
    index = LexicalIndex(
        ["Early AD Screening from MRI", "Logs", "Video", "Graphs"],
        [
            "Alzheimer disease (AD) is diagnosed late; we screen for AD early.",
            "Anomaly detection (AD) in system logs.",
            "Anomaly detection (AD) in surveillance video.",
            "Anomaly detection (AD) on graphs.",
        ],
    )
    scores = index.scores([index_terms("anomaly detection")])[0]
    assert scores[0] == 0 and min(scores[1:]) > 0


def test_why_names_the_acronym_where_the_paper_writes_only_that(mllm_papers):
    """The "why" shows the reader's words, and where the paper has them only as an
    acronym (or only spelled out), says so rather than claim words it does not write."""
    spelled_out = {r.paper.key: r for r in rank_topics(["Pruning multimodal large language models"])}
    assert spelled_out["acronym"].matched_terms == ["Pruning", "MLLM (multimodal large language models)"]
    assert spelled_out["acronym"].why.startswith("Matches your topic “Pruning multimodal large language models”")
    assert "“MLLM” stands for “multimodal large language models”" in spelled_out["acronym"].why
    assert spelled_out["long"].matched_terms == ["Pruning", "multimodal", "large", "language", "models"]

    abbreviated = {r.paper.key: r for r in rank_topics(["MLLM pruning"])}
    assert abbreviated["long"].matched_terms == ["pruning", "MLLM (spelled out)"]
    assert abbreviated["acronym"].matched_terms == ["MLLM", "pruning"]
