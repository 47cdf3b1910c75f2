"""Paper web pages: the daily list and a single paper's page, in the shape the public
pages embed their data (``data-props`` JSON for their scripts)."""

import html
import json

import pytest

from papers.models import Paper
from tests.papers import feeds

pytestmark = pytest.mark.django_db


def paper_page(sample: feeds.Sample, *, upvotes: int, daily: str) -> bytes:
    props = {
        "paper": {
            "id": sample.arxiv_id,
            "authors": [{"_id": f"a{n}", "name": name, "hidden": False} for n, name in enumerate(sample.authors)],
            "publishedAt": "2026-03-12T17:59:51.000Z",
            "submittedOnDailyAt": daily,
            "title": sample.title,
            "summary": sample.abstract,
            "upvotes": upvotes,
            "discussionId": "d1",
        },
        "canReadDatabase": False,
        "hasHfLevelAccess": False,
    }
    attribute = html.escape(json.dumps(props), quote=True)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(sample.title)}</title></head><body>"
        f'<div class="SVELTE_HYDRATER contents" data-target="PaperPage" data-props="{attribute}"></div>'
        "<main><h1>{html.escape(sample.title)}</h1></main></body></html>"
    ).encode()


def test_a_paper_page(import_file):
    sample = feeds.samples(1)[0]
    assert import_file("paper.html", paper_page(sample, upvotes=42, daily="2026-03-13T00:28:11.476Z")).startswith(
        "created 1,"
    )
    paper = Paper.objects.get()
    assert (paper.key, paper.upvotes, paper.authors) == (sample.arxiv_id, 42, sample.authors)
    assert str(paper.announced_on) == "2026-03-13"  # the day it was listed, not its arXiv date
    assert paper.page_url == f"https://huggingface.co/papers/{sample.arxiv_id}"


def test_a_paper_page_after_the_text_page_merges_in_upvotes_and_authors(import_file):
    sample = feeds.samples(1)[0]
    import_file("page.txt", "Mar 13\n\n" + feeds.text_page([sample], header=""))
    assert import_file("paper.html", paper_page(sample, upvotes=7, daily="2026-03-20T00:00:00Z")) == (
        "created 0, updated 1, unchanged 0"
    )
    paper = Paper.objects.get()
    assert (paper.key, paper.upvotes, paper.authors) == (sample.arxiv_id, 7, sample.authors)
    assert paper.announced_on.month == 3 and paper.announced_on.day == 13  # the first date stays


def test_the_daily_page_dates_its_papers_by_its_date(import_file):
    page = feeds.html_with_props(feeds.samples(2))  # papers published on 2026-11-20
    page = page.replace(b"&quot;date&quot;: &quot;2026-11-20&quot;", b"&quot;date&quot;: &quot;2026-11-23&quot;")
    import_file("daily.html", page)
    assert {str(day) for day in Paper.objects.values_list("announced_on", flat=True)} == {"2026-11-23"}
