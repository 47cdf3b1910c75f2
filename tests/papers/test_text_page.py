"""The plain-text trending page: dated by its headings, and prose only."""

from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError
from django.utils import timezone

from papers import importers
from papers.importers.base import BadInput
from papers.importers.text_page import heading_day
from papers.models import Paper
from tests.papers import feeds

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "heading, today, expected",
    [
        ("Mar 13", date(2026, 12, 7), date(2026, 3, 13)),
        ("Mar 13", date(2026, 3, 13), date(2026, 3, 13)),
        ("Mar 13", date(2026, 3, 12), date(2025, 3, 13)),  # never in the future
        ("Dec 31", date(2027, 1, 2), date(2026, 12, 31)),
        ("Feb 29", date(2027, 3, 1), date(2024, 2, 29)),
        ("Friday, 13 March 2026", date(2030, 1, 1), date(2026, 3, 13)),
        ("March 13th", date(2026, 12, 7), date(2026, 3, 13)),
        ("2026-03-13", date(2026, 12, 7), date(2026, 3, 13)),
        ("Mar 32", date(2026, 12, 7), None),
        ("Marching orders", date(2026, 12, 7), None),
    ],
)
def test_date_headings(heading, today, expected):
    assert heading_day(heading, today=today) == expected


def test_papers_are_dated_by_the_heading_above_them(import_file):
    papers = feeds.samples(3)
    yesterday = timezone.localdate() - timedelta(days=1)
    week_ago = timezone.localdate() - timedelta(days=7)
    page = (
        f"new\n\nSubscribe\n\n{yesterday:%b} {yesterday.day}\n\n"
        + feeds.text_page(papers[:2], header="")
        + f"\n{week_ago:%b} {week_ago.day}\n\n"
        + feeds.text_page(papers[2:], header="")
    )
    assert import_file("page.txt", page) == "created 3, updated 0, unchanged 0"
    days = dict(Paper.objects.values_list("title", "announced_on"))
    assert days == {papers[0].title: yesterday, papers[1].title: yesterday, papers[2].title: week_ago}


def test_a_reimport_never_moves_a_paper(import_file, monkeypatch):
    page = "Mar 13\n\n" + feeds.text_page(feeds.samples(1), header="")
    import_file("page.txt", page)
    first = Paper.objects.get().announced_on
    later = date(first.year + 1, 3, 14)  # a year on, "Mar 13" means another day
    monkeypatch.setattr("papers.importers.text_page.timezone.localdate", lambda: later)
    assert import_file("page.txt", page) == "created 0, updated 0, unchanged 1"
    assert Paper.objects.get().announced_on == first


def test_the_trending_page_lands_on_its_heading_day(import_file):
    page = REPO.parent / "shared" / "data" / "trending-papers-page.txt"
    if not page.exists():  # a fresh clone has no shared data: the page's shape is tested above
        page_text = "Mar 13\n\n" + feeds.text_page(feeds.samples(3), header="")
    else:
        page_text = page.read_text(encoding="utf-8")
    import_file("page.txt", page_text)
    days = set(Paper.objects.values_list("announced_on", flat=True))
    assert days == {heading_day("Mar 13", today=timezone.localdate())}


PYTHON_SOURCE = '''"""A module whose docstring reads like prose.

This module provides helpers that read feeds, and every helper documents what it does in
full sentences, so a careless reader of plain text could mistake it for an abstract of a
paper. It is program source all the same, and must never be imported as papers.
"""

import re


def parse(data):
    """Parse the data."""
    text = data.decode("utf-8")
    return [line for line in text.splitlines() if line]


Helpers for everyone

This paragraph is written in prose as well, long enough and with sentence ends, and it sits
under a single short line that could pass for a title; yet the file it is in is code.
'''


def test_python_source_is_not_a_papers_page():
    with pytest.raises(BadInput, match="looks like program source"):
        importers.parse(PYTHON_SOURCE.encode(), "text")


def test_python_source_is_refused_by_import_papers(import_file):
    with pytest.raises(CommandError, match="looks like program source"):
        import_file("module.py", PYTHON_SOURCE)
    assert not Paper.objects.exists()


@pytest.mark.parametrize(
    "title, abstract",
    [
        ("def parse(data):", "x = compute(data) " * 20 + "."),
        ("A fine title", "for item in items: total += item.value; print(total) " * 5 + "."),
        ("A fine title", "a_b_c = {x: y for x, y in pairs} " * 8 + "."),
    ],
)
def test_a_code_paragraph_is_not_an_abstract(title, abstract):
    with pytest.raises(BadInput, match="no papers found"):
        importers.parse(f"{title}\n\n{abstract}\n".encode(), "text")
