"""Each importer on a feed the test writes: what comes out of the bytes."""

import json
from datetime import UTC, datetime

import pytest

from papers import importers
from papers.importers.base import BadInput
from tests.papers import feeds

PAPERS = feeds.samples(3)


def parse(data, fmt, **kwargs):
    assert importers.detect_format(data) == fmt
    return importers.parse(data, fmt, **kwargs)


def test_daily_json():
    records = parse(feeds.daily_json(PAPERS, version="v3"), "daily-json")
    assert [r.title for r in records] == [p.title for p in PAPERS]
    first = records[0]
    assert first.arxiv_id == "2611.10000v3"
    assert first.abstract == PAPERS[0].abstract
    assert first.authors == ["Ada Example", "Bo Sample"]
    assert (first.upvotes, first.comment_count) == (10, 0)
    assert first.page_url == "https://huggingface.co/papers/2611.10000v3"
    assert first.abs_url == "https://arxiv.org/abs/2611.10000"
    assert first.thumbnail_url == "https://cdn.example.org/thumbs/2611.10000.png"
    assert first.published_at == "2026-11-20T10:00:00Z"


def test_daily_json_page_links_follow_the_feed_site():
    records = importers.parse(feeds.daily_json(PAPERS[:1]), "daily-json", url="http://127.0.0.1:9/api/daily_papers")
    assert records[0].page_url == "http://127.0.0.1:9/papers/2611.10000"


def test_html_data_props():
    records = parse(feeds.html_with_props(PAPERS), "html")
    assert [(r.title, r.arxiv_id, r.upvotes) for r in records] == [(p.title, p.arxiv_id, p.upvotes) for p in PAPERS]
    assert records[1].authors == PAPERS[1].authors


def test_html_cards_when_there_are_no_props():
    records = parse(feeds.html_with_cards(PAPERS), "html", url="https://papers.example.org/daily")
    assert [r.title for r in records] == [p.title for p in PAPERS]
    card = records[2]
    assert card.arxiv_id == "2611.10002"
    assert card.upvotes == "12" and card.comment_count == "2"
    assert card.authors == PAPERS[2].authors
    assert card.abstract.strip() == PAPERS[2].abstract.strip()
    assert card.page_url == "https://papers.example.org/papers/2611.10002"
    assert card.thumbnail_url == "https://papers.example.org/thumbs/2611.10002.png"


def test_html_cards_comment_count_from_the_discussion_link():
    page = feeds.html_with_cards(PAPERS[:1]).replace(b'class="comments" ', b"")
    assert importers.parse(page, "html")[0].comment_count == "0"


def test_html_cards_used_when_props_are_broken():
    page = feeds.html_with_cards(PAPERS).replace(b"<main>", b"<main><div data-props='{not json'></div>")
    assert len(importers.parse(page, "html")) == 3


def test_atom_from_the_arxiv_api():
    records = parse(feeds.atom(PAPERS), "atom")
    first = records[0]
    assert first.arxiv_id == "2611.10000"
    assert first.title == PAPERS[0].title
    assert first.abstract.strip() == PAPERS[0].abstract.strip()
    assert first.authors == PAPERS[0].authors
    assert first.categories == ["cs.CL"]
    assert first.pdf_url == "https://arxiv.org/pdf/2611.10000"
    assert first.upvotes is None  # arXiv has no upvotes; an import must not reset them


def test_atom_api_error_is_reported():
    error = b"""<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">
      <entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id><title>Error</title>
      <summary>incorrect id format for 1234</summary></entry></feed>"""
    with pytest.raises(BadInput, match="arXiv API answered an error: incorrect id format for 1234"):
        importers.parse(error, "atom")


def test_rss_from_arxiv_category_feeds():
    records = parse(feeds.rss(PAPERS), "rss")
    first = records[0]
    assert first.arxiv_id == "2611.10000"
    assert first.abstract == " ".join(PAPERS[0].abstract.split())
    assert first.authors == PAPERS[0].authors
    assert first.categories == ["cs.CL"]
    assert first.published_at == "Fri, 20 Nov 2026 00:00:00 -0500"


def test_old_rdf_rss_from_arxiv():
    records = parse(feeds.rss_rdf(PAPERS), "rss")
    first = records[0]
    assert first.title == PAPERS[0].title
    assert first.arxiv_id == "2611.10000"
    assert first.authors == PAPERS[0].authors
    from papers.importers.normalise import clean_text

    assert clean_text(first.abstract) == clean_text(PAPERS[0].abstract)


def test_text_page_header_then_title_and_abstract_pairs():
    records = parse(feeds.text_page(PAPERS).encode(), "text")
    assert [(r.title, r.abstract) for r in records] == [(p.title, " ".join(p.abstract.split())) for p in PAPERS]


def test_text_page_with_a_short_title_and_a_question_title():
    papers = feeds.samples(2)
    papers[0].title = "Pointer Networks"
    papers[1].title = "Can we learn better with hard samples?"
    records = importers.parse(feeds.text_page(papers, header="").encode(), "text")
    assert [r.title for r in records] == ["Pointer Networks", "Can we learn better with hard samples?"]


def test_text_page_windows_line_endings_and_bom():
    data = b"\xef\xbb\xbf" + feeds.text_page(PAPERS).replace("\n", "\r\n").encode()
    assert len(parse(data, "text")) == 3


def test_text_page_stray_paragraph_between_papers_is_an_error():
    page = feeds.text_page(PAPERS[:1]) + "\nJust a line\n\n" + feeds.text_page(PAPERS[1:], header="")
    with pytest.raises(BadInput, match=r"paragraph 8 \('Just a line'\) is neither a title nor an abstract"):
        importers.parse(page.encode(), "text")


@pytest.mark.parametrize(
    "data, fmt",
    [
        (b"  \n[]", "daily-json"),
        (b'<?xml version="1.0"?>\n<!-- c --><feed xmlns="http://www.w3.org/2005/Atom"/>', "atom"),
        (b"<?xml version='1.0'?><rdf:RDF xmlns:rdf='x'/>", "rss"),
        (b"<div>hi</div>", "html"),
        (b"Plain title\n\nPlain abstract", "text"),
    ],
)
def test_detection(data, fmt):
    assert importers.detect_format(data) == fmt


def test_dates_from_feeds_are_parsed_when_normalised():
    from papers.importers.normalise import normalise_record

    clean = normalise_record(importers.parse(feeds.rss(PAPERS[:1]), "rss")[0])
    assert clean.published_at == datetime(2026, 11, 20, 5, tzinfo=UTC)


def test_a_json_feed():
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "A lab's blog",
        "items": [
            {
                "id": "https://lab.example.org/posts/1",
                "url": "https://lab.example.org/posts/1",
                "title": "Our new paper",
                "content_html": "<p>We <blink>show</blink> things.</p><script>x()</script>",
                "date_published": "2026-03-13T10:00:00+01:00",
                "authors": [{"name": "Mira Okonkwo"}],
            },
            {"id": "2", "content_text": "No title: skipped."},
        ],
    }
    records = parse(json.dumps(feed).encode(), "daily-json")
    assert records.skipped == 1
    (record,) = records
    assert (record.title, record.abstract.strip(), record.authors) == (
        "Our new paper",
        "We show things.",
        ["Mira Okonkwo"],
    )
    assert (record.page_url, record.arxiv_id) == ("https://lab.example.org/posts/1", "")
    assert record.published_at == "2026-03-13T10:00:00+01:00"
