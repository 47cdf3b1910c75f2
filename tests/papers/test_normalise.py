from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from papers.importers.base import BadInput, PaperRecord
from papers.importers.normalise import (
    clean_text,
    clean_url,
    normalise_arxiv_id,
    normalise_record,
    paper_key,
    parse_when,
    title_key,
)

new_ids = st.builds(
    lambda yy, mm, number, width: f"{yy:02d}{mm:02d}.{number:0{width}d}"[: 5 + width],
    st.integers(7, 99),
    st.integers(1, 12),
    st.integers(0, 9999),
    st.sampled_from([4, 5]),
)
old_ids = st.builds(
    lambda archive, number: f"{archive}/{number:07d}",
    st.sampled_from(["hep-th", "hep-ph", "math.GT", "cond-mat", "astro-ph", "quant-ph", "cs"]),
    st.integers(0, 9_999_999),
)
versions = st.integers(1, 30).map(lambda n: f"v{n}")
markup = st.sampled_from(["<b>", "</b>", "<i>x</i>", "<script>alert(1)</script>", "&amp;", "&lt;", "<p>", " ", "\n"])
texty = st.lists(st.one_of(st.text(max_size=20), markup), max_size=8).map("".join)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2401.12345v2", "2401.12345"),
        ("2401.12345", "2401.12345"),
        ("arXiv:2401.12345v11", "2401.12345"),
        ("https://arxiv.org/abs/2401.12345v3", "2401.12345"),
        ("http://arxiv.org/pdf/2401.12345v1.pdf", "2401.12345"),
        ("oai:arXiv.org:2401.01234v1", "2401.01234"),
        ("0704.0001", "0704.0001"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("hep-th/9901001v2", "hep-th/9901001"),
        ("http://arxiv.org/abs/math.GT/0309136v1", "math.GT/0309136"),
        ("not an id", ""),
        ("", ""),
        (None, ""),
        ("2413.12345", ""),  # there is no 13th month
    ],
)
def test_arxiv_ids_lose_their_version_and_wrapping(raw, expected):
    assert normalise_arxiv_id(raw) == expected


@settings(database=None, deadline=None)  # no example files; a loaded CI machine is slow
@given(new_ids, versions)
def test_new_style_version_is_stripped(arxiv_id, version):
    assert normalise_arxiv_id(arxiv_id + version) == normalise_arxiv_id(arxiv_id) == arxiv_id


@settings(database=None, deadline=None)
@given(old_ids, versions)
def test_old_style_version_is_stripped(arxiv_id, version):
    assert normalise_arxiv_id(arxiv_id + version) == normalise_arxiv_id(arxiv_id) == arxiv_id


@settings(database=None, deadline=None)
@given(st.one_of(new_ids, old_ids, st.text(max_size=40)))
def test_arxiv_id_normalising_is_idempotent(value):
    once = normalise_arxiv_id(value)
    assert normalise_arxiv_id(once) == once


@settings(database=None, deadline=None)
@given(st.one_of(st.text(), texty))
def test_clean_text_is_idempotent(value):
    once = clean_text(value)
    assert clean_text(once) == once
    assert once == once.strip()
    assert "  " not in once and "\n" not in once


@settings(database=None, deadline=None)
@given(texty)
def test_title_key_is_stable_under_cleaning_case_and_spacing(title):
    key = title_key(title)
    assert key == title_key(clean_text(title))
    assert key == title_key("  " + title.upper().replace(" ", "\n ") + "\t")
    assert key.startswith("title:") and len(key) <= 80


def test_title_key_ignores_punctuation_and_unicode_composition():
    assert title_key("Café: A Study!") == title_key("cafe\u0301 — a study")
    assert title_key("Attention Is All You Need") != title_key("Attention Is Not All You Need")


def test_paper_key_prefers_the_arxiv_id():
    assert paper_key(arxiv_id="2401.12345v2", title="Anything") == "2401.12345"
    assert paper_key(arxiv_id="", title="Anything") == title_key("Anything")


def test_markup_becomes_text_and_scripts_vanish():
    assert clean_text("<b>Bold</b> claims <script>alert('x')</script>about &amp; more") == "Bold claims about & more"
    assert clean_text("Why x < y and <think> tags matter") == "Why x < y and <think> tags matter"
    assert clean_text("a\u200bb\u00a0c\r\n\td\ufeff") == "ab c d"
    assert clean_text("e\u0301") == "\u00e9"


def test_urls_must_be_http_and_absolute():
    assert clean_url("javascript:alert(1)") == ""
    assert clean_url("/papers/1", "https://example.org/x") == "https://example.org/papers/1"
    assert clean_url("data:text/html,hi") == ""
    assert clean_url("https://example.org/" + "a" * 600) == ""


def test_dates_in_the_formats_feeds_use():
    assert parse_when("2026-11-20T10:00:00.000Z") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_when("Fri, 20 Nov 2026 00:00:00 -0500") == datetime(2026, 11, 20, 5, tzinfo=UTC)
    assert parse_when("2026-11-20") == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_when("last tuesday") is None


def test_a_record_without_title_is_refused():
    with pytest.raises(BadInput, match="no title"):
        normalise_record(PaperRecord(title="<script>only code</script>  "))
