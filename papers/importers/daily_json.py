"""The public daily-papers JSON: a list of items, each with a ``paper`` object
(``id``, ``title``, ``summary``, ``authors`` [{``name``}], ``publishedAt``,
``submittedOnDailyAt``, ``upvotes``) and ``numComments``, ``thumbnail``, ``submittedBy``
beside it. ``submittedOnDailyAt`` is the day the paper was listed, so it dates the paper.

A bare paper object, or a list of them, is read too (a paper page's data holds one), and
so is a JSON Feed (jsonfeed.org: ``items`` with ``title``, ``summary`` or
``content_html``, ``url``, ``date_published``, ``authors``), which feed readers take.
Items without a title are skipped and counted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from papers.importers.base import BadInput, PaperRecord, Records, load_json, no_papers
from papers.importers.normalise import clean_text, html_to_text, normalise_arxiv_id

DEFAULT_SITE = "https://huggingface.co"


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> Records:
    document = load_json(data, charset)
    if isinstance(document, dict):
        for name in ("dailyPapers", "papers", "items", "results"):
            if isinstance(document.get(name), list):
                document = document[name]
                break
        else:
            document = [document]
    if not isinstance(document, list):
        raise BadInput(f"expected a list of papers, got a JSON {type(document).__name__}")
    if not document:
        raise BadInput("no papers found: the JSON list is empty")
    records = records_from_items(document, site=site_of(url))
    if not records:
        raise no_papers("items", records.skipped)
    return records


def site_of(url: str | None) -> str:
    """Where the paper pages live: the feed's own site, the public one for files."""
    if url:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return DEFAULT_SITE


def _title(paper: dict, item: dict) -> str:
    for value in (paper.get("title"), item.get("title")):
        if isinstance(value, str) and clean_text(value):
            return value
    return ""


def records_from_items(items: list, *, site: str) -> Records:
    records, skipped = [], 0
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise BadInput(f"item {number} is a JSON {type(item).__name__}, not an object")
        paper = item.get("paper") if isinstance(item.get("paper"), dict) else item
        if not _title(paper, item):
            skipped += 1
            continue
        records.append(record_from_paper(paper, item, site=site))
    return Records(records, skipped=skipped)


def _text(*values) -> str:
    """The first value that is a non-empty string (feeds put numbers or objects anywhere)."""
    return next((v for v in values if isinstance(v, str) and v), "")


def _page(paper: dict, paper_id: str, site: str) -> str:
    """The paper's page: its own ``url`` (JSON Feed), an id that is a URL, else the site's."""
    own = _text(paper.get("url"), paper.get("external_url"))
    if own or paper_id.startswith(("http://", "https://")):
        return own or paper_id
    return f"{site}/papers/{paper_id}" if paper_id else ""


def record_from_paper(paper: dict, item: dict, *, site: str) -> PaperRecord:
    paper_id = _text(paper.get("id")).strip() or (str(paper["id"]) if isinstance(paper.get("id"), int) else "")
    # A JSON Feed's id is its post's URL: digits in it are no arXiv id.
    paper_id_is_arxiv = not paper_id.startswith(("http://", "https://")) or "arxiv.org/" in paper_id
    arxiv_id = normalise_arxiv_id(paper_id) if paper_id_is_arxiv else ""
    html = _text(paper.get("content_html"))
    authors = []
    for author in paper.get("authors") if isinstance(paper.get("authors"), list) else []:
        name = author.get("name") if isinstance(author, dict) else author
        if isinstance(name, str):
            authors.append(name)
    categories = paper.get("categories") if isinstance(paper.get("categories"), list) else []
    return PaperRecord(
        title=_title(paper, item),
        abstract=_text(paper.get("summary"), paper.get("abstract"), item.get("summary"), paper.get("content_text"))
        or (html_to_text(html) if html else ""),
        arxiv_id=paper_id if paper_id_is_arxiv else "",
        doi=_text(paper.get("doi"), item.get("doi")),
        authors=authors,
        categories=[c for c in categories if isinstance(c, str)],
        published_at=_text(paper.get("publishedAt"), item.get("publishedAt"), paper.get("date_published")) or None,
        announced_on=_text(paper.get("submittedOnDailyAt"), item.get("submittedOnDailyAt")) or None,
        upvotes=paper.get("upvotes", item.get("upvotes")),
        comment_count=item.get("numComments", paper.get("numComments")),
        abs_url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else "",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "",
        page_url=_page(paper, paper_id, site),
        thumbnail_url=_text(item.get("thumbnail"), paper.get("thumbnail"), paper.get("image")),
    )
