"""The public daily-papers JSON: a list of items, each with a ``paper`` object
(``id``, ``title``, ``summary``, ``authors`` [{``name``}], ``publishedAt``, ``upvotes``)
and ``numComments``, ``thumbnail``, ``submittedBy`` beside it.

A bare paper object, or a list of them, is read too (a paper page's data holds one).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from papers.importers.base import BadInput, PaperRecord, decode_text
from papers.importers.normalise import normalise_arxiv_id

DEFAULT_SITE = "https://huggingface.co"


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> list[PaperRecord]:
    text = decode_text(data, charset)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # An unterminated string runs to the end of the text, so it is cut short too.
        ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "JSON ends early (truncated?)" if ends_early else "malformed JSON"
        raise BadInput(f"{what}: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
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
    return records_from_items(document, site=site_of(url))


def site_of(url: str | None) -> str:
    """Where the paper pages live: the feed's own site, the public one for files."""
    if url:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return DEFAULT_SITE


def records_from_items(items: list, *, site: str) -> list[PaperRecord]:
    records = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise BadInput(f"item {number} is a JSON {type(item).__name__}, not an object")
        paper = item.get("paper") if isinstance(item.get("paper"), dict) else item
        title = paper.get("title") or item.get("title")
        if not isinstance(title, str) or not title.strip():
            raise BadInput(f"item {number} has no paper title")
        records.append(record_from_paper(paper, item, site=site))
    return records


def record_from_paper(paper: dict, item: dict, *, site: str) -> PaperRecord:
    paper_id = str(paper.get("id") or "").strip()
    arxiv_id = normalise_arxiv_id(paper_id)
    authors = []
    for author in paper.get("authors") or []:
        name = author.get("name") if isinstance(author, dict) else author
        if isinstance(name, str):
            authors.append(name)
    return PaperRecord(
        title=paper.get("title") or item.get("title") or "",
        abstract=paper.get("summary") or paper.get("abstract") or item.get("summary") or "",
        arxiv_id=paper_id,
        authors=authors,
        categories=[c for c in paper.get("categories") or [] if isinstance(c, str)],
        published_at=paper.get("publishedAt") or item.get("publishedAt"),
        upvotes=paper.get("upvotes", item.get("upvotes")),
        comment_count=item.get("numComments", paper.get("numComments")),
        abs_url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else "",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "",
        page_url=f"{site}/papers/{paper_id}" if paper_id else "",
        thumbnail_url=item.get("thumbnail") or paper.get("thumbnail") or "",
    )
