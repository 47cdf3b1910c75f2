"""Topic syntax and the BM25F index, without a database."""

import numpy as np

from ranking.lexical import LexicalIndex, index_terms, stem
from ranking.query import author_matches, category_matches, parse_query


def test_parse_plain_words():
    query = parse_query("long context language models")
    assert query.words == ("long", "context", "language", "models")
    assert query.terms == ("long", "context", "languag", "model")
    assert not query.phrases and not query.excluded_words and not query.authors and not query.categories


def test_parse_full_syntax():
    query = parse_query('"state space" models -vision -"image generation" author:"Albert Gu" author:Dao cat:cs.LG')
    assert query.phrases == ("state space",)
    assert query.words == ("models",)
    assert query.excluded_words == ("vision",)
    assert query.excluded_phrases == ("image generation",)
    assert query.authors == ("albert gu", "dao")
    assert query.categories == ("cs.lg",)
    assert query.free_text == "models state space"


def test_parse_edge_cases():
    assert parse_query('"unterminated phrase').phrases == ("unterminated phrase",)
    assert parse_query("on-device models").words == ("on-device", "models")
    assert parse_query("- lonely dash").words == ("lonely", "dash")
    assert parse_query("").is_empty
    assert parse_query("of the").is_empty
    assert parse_query("cat:cs.CL").is_filter_only


def test_stemming_and_acronym_plurals():
    assert stem("benchmarks") == stem("benchmarking") == "benchmark"
    assert stem("LLMs".lower()) == stem("llm") == "llm"
    assert stem("gpus") == "gpus"  # has a vowel: left to the stemmer
    assert index_terms("Évaluating the Models for Phones") == ["evalu", "model", "phone"]
    assert index_terms("Alzheimer's disease and the model's outputs") == ["alzheim", "diseas", "model", "output"]
    # What other apostrophes leave is not a word either; what a hyphen leaves may be.
    assert index_terms("It doesn't scale, we'll see; they've re-ranked") == ["scale", "see", "re", "rank"]


def test_author_and_category_matching():
    assert author_matches("hinton", "Geoffrey E. Hinton")
    assert author_matches("geoffrey hinton", "Geoffrey Hinton")
    assert not author_matches("geoffrey hinton", "Geoffrey Irving")
    assert category_matches("cs.cl", ["cs.CL", "cs.AI"])
    assert category_matches("cs", ["cs.CL"])
    assert not category_matches("cs.c", ["cs.CL"])


def test_title_counts_more_than_abstract():
    index = LexicalIndex(
        ["Graph networks", "A study of proteins", "Unrelated things"],
        ["We study proteins with several methods.", "We use graph networks on molecules.", "Nothing here at all."],
    )
    scores = index.scores([["graph"]])[0]
    assert scores[0] > scores[1] > scores[2] == 0


def test_words_side_by_side_score_higher():
    index = LexicalIndex(
        ["Sequence parallelism for training", "Parallelism of sequence models", "Filler"],
        ["same length text here", "same length text here", "nothing"],
    )
    scores = index.scores([index_terms("sequence parallelism")])[0]
    assert scores[0] > scores[1] > 0


def test_scores_are_on_a_fixed_scale():
    index = LexicalIndex(["video understanding", "video", "cooking"], ["", "", ""])
    scores = index.scores([index_terms("video understanding"), index_terms("absent words")])
    assert 0.5 < scores[0, 0] <= 1.5
    assert 0 < scores[0, 1] < scores[0, 0]
    assert np.all(scores[1] == 0)


def test_a_full_name_after_author_is_one_author():
    assert parse_query("author:Mira Okonkwo").authors == ("mira okonkwo",)
    query = parse_query("protein folding author:Mira Okonkwo -survey")
    assert (query.authors, query.words) == (("mira okonkwo",), ("protein", "folding"))
    assert query.excluded_words == ("survey",)
    assert parse_query("author:okonkwo protein").words == ("protein",)  # lower case: the name is one word
    assert parse_query('author:"Mira Okonkwo" Folding').words == ("Folding",)
    assert parse_query("author:Ana Lucia Costa").authors == ("ana lucia costa",)
    assert parse_query("author:Ana Lucia Costa Transformers").words == ("Transformers",)  # names stop at 3 words
