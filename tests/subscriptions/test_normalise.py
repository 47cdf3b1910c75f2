from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.services import clean_authors, clean_topics, normalise_topic, split_lines


def test_trims_collapses_whitespace_and_lowercases():
    assert normalise_topic("  Long   Context\tLanguage  MODELS \n") == "long context language models"


def test_keeps_the_query_syntax_ranking_reads():
    query = '"Exact Phrase"  -excluded author:Hinton cat:cs.CL'
    assert normalise_topic(query) == '"exact phrase" -excluded author:hinton cat:cs.cl'


def test_typographic_quotes_and_minus_become_the_plain_syntax():
    assert normalise_topic("“state space models” −transformer") == '"state space models" -transformer'


def test_line_breaks_and_control_characters_never_survive():
    assert normalise_topic("graph\r\nBcc: evil@example.org\x00\x1b[31m") == "graph bcc: evil@example.org [31m"
    assert normalise_topic("a\u2028b\u2029c\u0085d") == "a b c d"


def test_invisible_format_characters_are_removed_but_joiners_kept():
    assert normalise_topic("safe\u202etxt.exe\u200b") == "safetxt.exe"
    assert normalise_topic("می\u200cخواهم") == "می\u200cخواهم"


def test_non_ascii_topics_are_kept_and_unicode_forms_unified():
    assert normalise_topic("Maschinelles Lernen für Übersetzung") == "maschinelles lernen für übersetzung"
    assert normalise_topic("大规模语言模型") == "大规模语言模型"
    assert normalise_topic("Cafe\u0301") == normalise_topic("Café") == "café"
    assert normalise_topic("ＬＬＭ") == "llm"  # full-width letters


def test_long_topics_are_cut_at_200_characters_on_a_word_boundary():
    topic = normalise_topic("word " * 100)
    assert len(topic) <= 200
    assert topic.endswith("word")
    assert normalise_topic("x" * 500) == "x" * 200


def test_empty_and_blank_give_empty():
    assert normalise_topic("") == ""
    assert normalise_topic(" \n\t ") == ""
    assert normalise_topic(None) == ""


def test_clean_topics_deduplicates_after_normalising():
    assert clean_topics(["RL", " rl ", "", "Diffusion  Models", "diffusion models"]) == ["rl", "diffusion models"]


def test_authors_keep_their_case_and_split_on_commas():
    assert clean_authors(split_lines("Yann LeCun, yann lecun\n  Fei-Fei   Li ", commas=True)) == [
        "Yann LeCun",
        "Fei-Fei Li",
    ]


@settings(database=None, deadline=None)
@given(st.text(max_size=600))
def test_normal_form_is_stable_single_line_and_bounded(text):
    topic = normalise_topic(text)
    assert normalise_topic(topic) == topic
    assert len(topic) <= 200
    assert "\n" not in topic and "\r" not in topic
    assert topic == topic.strip()
    assert "  " not in topic
