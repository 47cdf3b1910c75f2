"""Atom feeds, above all the arXiv API (``export.arxiv.org/api/query``): ``entry`` with
``id`` (the abs URL with version), ``title``, ``summary``, ``author/name``, ``published``,
``link`` (alternate = abstract page, ``title="pdf"`` = PDF) and ``category/@term``."""

from __future__ import annotations

from papers.importers.base import BadInput, PaperRecord, child_text, children, local_name, parse_xml
from papers.importers.normalise import normalise_arxiv_id


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> list[PaperRecord]:
    root = parse_xml(data, charset)
    if local_name(root) != "feed":
        raise BadInput(f"not an Atom feed: the document is <{local_name(root)}>, not <feed>")
    entries = children(root, "entry")
    if not entries:
        raise BadInput("no papers found: the feed has no entries")
    records = []
    for number, entry in enumerate(entries, start=1):
        entry_id = child_text(entry, "id").strip()
        if "/api/errors" in entry_id:
            raise BadInput(f"the arXiv API answered an error: {child_text(entry, 'summary').strip()}")
        title = child_text(entry, "title")
        if not title.strip():
            raise BadInput(f"entry {number} has no title")
        links = {"alternate": "", "pdf": ""}
        for link in children(entry, "link"):
            href = link.get("href", "")
            if link.get("title") == "pdf" or link.get("type") == "application/pdf":
                links["pdf"] = links["pdf"] or href
            elif link.get("rel", "alternate") == "alternate":
                links["alternate"] = links["alternate"] or href
        arxiv_id = normalise_arxiv_id(entry_id) if "arxiv.org" in entry_id else normalise_arxiv_id(links["alternate"])
        is_arxiv = bool(arxiv_id) and ("arxiv.org" in entry_id or "arxiv.org" in links["alternate"])
        records.append(
            PaperRecord(
                title=title,
                abstract=child_text(entry, "summary") or child_text(entry, "content"),
                arxiv_id=arxiv_id if is_arxiv else "",
                authors=[child_text(author, "name") for author in children(entry, "author")],
                categories=[c.get("term", "") for c in children(entry, "category")],
                published_at=child_text(entry, "published") or child_text(entry, "updated"),
                abs_url=f"https://arxiv.org/abs/{arxiv_id}" if is_arxiv else "",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if is_arxiv else links["pdf"],
                page_url="" if is_arxiv else links["alternate"],
            )
        )
    return records
