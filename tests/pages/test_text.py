"""The snippets lists show: the start of an abstract, its spaces collapsed, cut at a word."""

from hypothesis import given
from hypothesis import strategies as st

from pages import text


def collapsed_then_cut(abstract: str, limit: int) -> str:
    """The snippet by its definition: every run of whitespace one space, then cut."""
    whole = " ".join(text.plain_text(abstract).split())
    if len(whole) <= limit:
        return whole
    return whole[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def test_a_long_abstract_is_cut_at_a_word_with_an_ellipsis():
    abstract = "We study sparse attention for long documents, and show it scales. " * 10
    result = text.snippet(abstract, limit=60)
    assert result == "We study sparse attention for long documents, and show it…"


def test_line_breaks_and_doubled_spaces_at_the_start_are_collapsed():
    abstract = "  We study\nsparse   attention\tfor long documents, and show it scales well. " * 5
    assert text.snippet(abstract, limit=40) == "We study sparse attention for long…"


def test_a_short_abstract_is_shown_whole_without_an_ellipsis():
    assert text.snippet("A short  abstract.\n", limit=60) == "A short abstract."


def test_maths_is_plain_text_in_the_snippet():
    result = text.snippet(r"Works for any $k \geq 2$ and more words after it.", limit=20)
    assert result.startswith("Works for any k ≥") and "$" not in result and "\\" not in result


words = st.sampled_from(["attention", "a", "models,", "long-context", "$x$", "re-", "ok.", "ß", "…"])
spaces = st.sampled_from([" ", " ", " ", "  ", "\n", "\t", "\u00a0", " \n ", "\x0b", "\x1f", "\u2009"])


@given(st.lists(st.tuples(words, spaces), max_size=60), st.sampled_from([1, 5, 20, 40]), st.booleans())
def test_the_quick_path_gives_what_collapsing_everything_gives(parts, limit, leading_space):
    abstract = (" " if leading_space else "") + "".join(word + space for word, space in parts)
    assert text.snippet(abstract, limit=limit) == collapsed_then_cut(abstract, limit)
