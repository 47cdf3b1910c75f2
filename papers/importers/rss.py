"""RSS feeds, above all arXiv's category feeds (``rss.arxiv.org/rss/cs.CL``): RSS 2.0
items whose description reads ``arXiv:2401.12345v1 Announce Type: new Abstract: ...``
and whose ``dc:creator`` lists the authors; the older RSS 1.0 (RDF) arXiv feeds with
titles like ``Title. (arXiv:2401.12345v1 [cs.CL])`` are read too."""

from __future__ import annotations

import re

from papers.importers.base import BadInput, PaperRecord, child_text, children, local_name, parse_xml
from papers.importers.normalise import clean_text, normalise_arxiv_id

_OLD_TITLE_SUFFIX = re.compile(r"\.?\s*\(arXiv:[^)]*\)\s*$")
_ANNOUNCE_PREFIX = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*(?:Abstract:)?\s*", re.IGNORECASE)


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> list[PaperRecord]:
    root = parse_xml(data, charset)
    kind = local_name(root)
    if kind == "rss":
        items = [item for channel in children(root, "channel") for item in children(channel, "item")]
    elif kind == "RDF":
        items = children(root, "item")
    else:
        raise BadInput(f"not an RSS feed: the document is <{kind}>, not <rss> or <rdf:RDF>")
    if not items:
        raise BadInput("no papers found: the feed has no items")
    records = []
    for number, item in enumerate(items, start=1):
        title = _OLD_TITLE_SUFFIX.sub("", child_text(item, "title"))
        if not title.strip():
            raise BadInput(f"item {number} has no title")
        link = child_text(item, "link").strip()
        guid = child_text(item, "guid").strip() or item.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about", "")
        is_arxiv = "arxiv" in (link + guid).lower()
        arxiv_id = (normalise_arxiv_id(guid) or normalise_arxiv_id(link)) if is_arxiv else ""
        creators = [clean_text("".join(c.itertext())) for c in children(item, "creator")]
        authors = creators
        if len(creators) == 1:
            authors = [name.strip() for name in re.split(r",|\band\b", creators[0]) if name.strip()]
        categories = [clean_text("".join(c.itertext())) for c in children(item, "category")]
        records.append(
            PaperRecord(
                title=title,
                abstract=_ANNOUNCE_PREFIX.sub("", clean_text(child_text(item, "description"))),
                arxiv_id=arxiv_id,
                authors=authors,
                categories=categories,
                published_at=child_text(item, "pubDate") or child_text(item, "date"),
                abs_url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else "",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "",
                page_url="" if arxiv_id else link,
            )
        )
    return records
