"""RSS feeds (0.9x, 1.0/RDF and 2.0), above all arXiv's category feeds
(``rss.arxiv.org/rss/cs.CL``).

arXiv's current items carry ``arxiv:announce_type`` (``new``, ``cross``, ``replace``,
``replace-cross``), a description reading ``arXiv:2401.12345v2 Announce Type: replace
Abstract: ...``, ``dc:creator`` with the authors and, when known, ``arxiv:DOI``. The
item's ``pubDate`` is the announcement date of new and cross-listed papers; a
replacement only updates a paper we have (it never creates one, nor moves its date).
The older RDF feeds with titles like ``Title. (arXiv:2401.12345v1 [cs.CL])`` are read too.

Core fields are read in RSS's own namespace only (``dc:title``, ``media:title`` or
``atom:link`` never replace them); items directly under ``<rss>`` count too.
"""

from __future__ import annotations

import re

from papers.importers.base import BadInput, PaperRecord, Records, usable
from papers.importers.normalise import clean_text, normalise_arxiv_id
from papers.importers.xmldoc import children, field_text, first, local_name, namespace, parse_xml, resolve

RSS_1 = "http://purl.org/rss/1.0/"
RSS_090 = "http://my.netscape.com/rdf/simple/0.9/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DUBLIN_CORE = "http://purl.org/dc/elements/1.1/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
ATOM = "http://www.w3.org/2005/Atom"
ARXIV = "http://arxiv.org/schemas/atom"
PRISM = "http://prismstandard.org/namespaces/basic/2.0/"
UPDATE_ONLY = {"replace", "replace-cross"}

_OLD_TITLE_SUFFIX = re.compile(r"\.?\s*\(arXiv:[^)]*\)\s*$")
_ANNOUNCE = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*(\S+)\s*(?:Abstract:)?\s*", re.IGNORECASE)
_AUTHOR_EMAIL = re.compile(r"^\s*\S+@\S+\s*\((.+)\)\s*$")


def _items(root) -> tuple[list, set[str]]:
    kind = local_name(root)
    if kind == "rss":
        core = {"", namespace(root)}
        channels = children(root, "channel", core)
        return [item for parent in [*channels, root] for item in children(parent, "item", core)], core
    if kind == "RDF":
        core = {"", RSS_1, RSS_090}
        channels = children(root, "channel", core)
        return [item for parent in [root, *channels] for item in children(parent, "item", core)], core
    raise BadInput(f"not an RSS feed: the document is <{kind}>, not <rss> or <rdf:RDF>")


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> Records:
    items, core = _items(parse_xml(data, charset, url=url))
    return usable((_record(item, core) for item in items), "items")


def _link(item, core) -> str:
    link = first(item, "link", core)
    if link is not None and field_text(link).strip():
        return resolve(link, field_text(link))
    for alternate in children(item, "link", {ATOM}):
        if alternate.get("rel", "alternate") == "alternate" and alternate.get("href"):
            return resolve(alternate, alternate.get("href"))
    guid = first(item, "guid", core)
    if guid is not None and guid.get("isPermaLink", "true") != "false":
        return resolve(guid, field_text(guid))
    return ""


def _authors(item, core) -> list[str]:
    creators = [clean_text(field_text(c)) for c in children(item, "creator", {DUBLIN_CORE})]
    if len(creators) == 1:
        return [name.strip() for name in re.split(r",|\band\b", creators[0]) if name.strip()]
    if creators:
        return creators
    authors = []
    for author in children(item, "author", core):
        text = clean_text(field_text(author))
        match = _AUTHOR_EMAIL.match(text)
        authors.append(match.group(1) if match else text)
    return authors


def _text(item, name: str, namespaces) -> str:
    return field_text(first(item, name, namespaces))


def _record(item, core) -> PaperRecord | None:
    title_element = first(item, "title", core)
    if title_element is None:  # Dublin Core's title only where RSS has none
        title_element = first(item, "title", {DUBLIN_CORE})
    title = _OLD_TITLE_SUFFIX.sub("", field_text(title_element))
    if not clean_text(title):
        return None
    link = _link(item, core)
    guid = _text(item, "guid", core).strip() or item.get(f"{{{RDF}}}about", "")
    is_arxiv = "arxiv" in (link + guid).lower()
    arxiv_id = (normalise_arxiv_id(guid) or normalise_arxiv_id(link)) if is_arxiv else ""
    description = clean_text(_text(item, "description", core) or _text(item, "encoded", {CONTENT}))
    prefix = _ANNOUNCE.match(description)
    announce_type = clean_text(_text(item, "announce_type", {ARXIV})).lower() or (
        prefix.group(1).lower() if prefix else ""
    )
    published = _text(item, "pubDate", core).strip() or _text(item, "date", {DUBLIN_CORE}).strip() or None
    categories = [clean_text(field_text(c)) for c in children(item, "category", core)]
    categories += [clean_text(field_text(c)) for c in children(item, "subject", {DUBLIN_CORE})]
    return PaperRecord(
        title=title,
        abstract=description[prefix.end() :] if prefix else description,
        arxiv_id=arxiv_id,
        doi=_text(item, "DOI", {ARXIV}) or _text(item, "doi", {PRISM}) or _text(item, "identifier", {DUBLIN_CORE}),
        authors=_authors(item, core),
        categories=categories,
        published_at=published,
        announced_on=None if announce_type in UPDATE_ONLY else published,
        update_only=announce_type in UPDATE_ONLY,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else "",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "",
        page_url="" if arxiv_id else link,
    )
