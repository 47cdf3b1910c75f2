"""Atom feeds (1.0, and 0.3 still served by old blogs), above all the arXiv API
(``export.arxiv.org/api/query``): ``entry`` with ``id`` (the abs URL with version),
``title``, ``summary``, ``author/name``, ``published``, ``link`` (alternate = abstract page,
``title="pdf"`` = PDF), ``category/@term`` and ``arxiv:doi``.

Core fields are read in the feed's own namespace only, so an extension's ``x:title`` or
``media:description`` never stands in for them; ``type``/``mode`` decide how a field's
text is read (see ``xmldoc.field_text``), and links resolve against ``xml:base``.
"""

from __future__ import annotations

from papers.importers.base import BadInput, PaperRecord, Records, usable
from papers.importers.normalise import clean_text, normalise_arxiv_id
from papers.importers.xmldoc import children, field_text, first, local_name, namespace, parse_xml, resolve

ARXIV = "http://arxiv.org/schemas/atom"
DUBLIN_CORE = "http://purl.org/dc/elements/1.1/"
_DATES = ("published", "issued", "created", "updated", "modified")  # 1.0 first, then 0.3


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> Records:
    root = parse_xml(data, charset, url=url)
    if local_name(root) != "feed":
        raise BadInput(f"not an Atom feed: the document is <{local_name(root)}>, not <feed>")
    core = {namespace(root)}  # Atom 1.0, Atom 0.3, or none at all: the root's is the feed's
    return usable((_record(entry, core) for entry in children(root, "entry", core)), "entries")


def _text(entry, name: str, core) -> str:
    return field_text(first(entry, name, core))


def _links(entry, core) -> dict[str, str]:
    links = {"alternate": "", "pdf": ""}
    for link in children(entry, "link", core):
        href = resolve(link, link.get("href", ""))
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            links["pdf"] = links["pdf"] or href
        elif link.get("rel", "alternate") == "alternate":
            links["alternate"] = links["alternate"] or href
    return links


def _record(entry, core) -> PaperRecord | None:
    entry_id = _text(entry, "id", core).strip()
    if "/api/errors" in entry_id:
        raise BadInput(f"the arXiv API answered an error: {clean_text(_text(entry, 'summary', core))}")
    title = _text(entry, "title", core)
    if not clean_text(title):
        return None
    links = _links(entry, core)
    arxiv_id = normalise_arxiv_id(entry_id) if "arxiv.org" in entry_id else normalise_arxiv_id(links["alternate"])
    is_arxiv = bool(arxiv_id) and ("arxiv.org" in entry_id or "arxiv.org" in links["alternate"])
    categories = [c.get("term", "") for c in children(entry, "category", core)]
    categories += [field_text(c) for c in children(entry, "subject", {DUBLIN_CORE})]
    return PaperRecord(
        title=title,
        abstract=_text(entry, "summary", core) or _text(entry, "content", core),
        arxiv_id=arxiv_id if is_arxiv else "",
        doi=field_text(first(entry, "doi", {ARXIV})),
        authors=[_text(author, "name", core) for author in children(entry, "author", core)],
        categories=categories,
        published_at=next((value for name in _DATES if (value := _text(entry, name, core).strip())), None),
        abs_url=f"https://arxiv.org/abs/{arxiv_id}" if is_arxiv else "",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if is_arxiv else links["pdf"],
        page_url="" if is_arxiv else links["alternate"],
    )
