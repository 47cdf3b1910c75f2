"""Importers: one module per feed format, each ``parse(data, *, url, charset)`` returning
``PaperRecord`` items (a ``Records`` list that also counts skipped entries), all
normalised by ``normalise.normalise_record``.

``detect_format`` sniffs the bytes (JSON, Atom, RSS, HTML, otherwise plain text); the
file name or Content-Type only break ties. Whatever the bytes, ``parse`` returns records
or raises ``BadInput``.
"""

from __future__ import annotations

import re

from papers.importers import atom, biorxiv, daily_json, html_page, rss, text_page
from papers.importers.base import BadInput, PaperRecord, Records
from papers.importers.xmldoc import sniff_encoding

__all__ = ["FORMATS", "BadInput", "PaperRecord", "Records", "detect_format", "parse"]

FORMATS = {
    "daily-json": daily_json.parse,
    "biorxiv-json": biorxiv.parse,
    "html": html_page.parse,
    "atom": atom.parse,
    "rss": rss.parse,
    "text": text_page.parse,
}

# Prolog: XML declaration, comments, processing instructions, a DOCTYPE (with an internal
# subset in brackets, whose declarations hold '>'), whitespace; then the root element.
_XML_START = re.compile(
    r"^(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\]\s*)?>|\s)*<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)",
    re.S | re.I,
)
_HTML_HINT = re.compile(r"<(?:!doctype\s+html|html|head|body|div|article|main|section|meta|title|p|h[1-6])[\s>]", re.I)
_BIORXIV = re.compile(r'"(?:collection|messages)"\s*:\s*\[')


def detect_format(data: bytes, *, name: str = "", content_type: str = "") -> str:
    """The format name for ``data``; raises BadInput for an empty body."""
    head_bytes = data[:16384]
    encoding = sniff_encoding(head_bytes) or "utf-8"
    head = head_bytes.decode(encoding, errors="replace").lstrip("\ufeff").lstrip()
    if not head:
        raise BadInput("the body is empty: no papers found")
    if head[0] in "[{":
        return "biorxiv-json" if head[0] == "{" and _BIORXIV.search(head) else "daily-json"
    if head[0] == "<":
        match = _XML_START.match(head)
        root = match.group(2).lower() if match else ""
        if root == "feed":
            return "atom"
        if root in ("rss", "rdf"):
            return "rss"
        if root == "html" or _HTML_HINT.search(head):
            return "html"
    hint = f"{name} {content_type}".lower()
    for needle, fmt in ((".json", "daily-json"), ("json", "daily-json"), ("atom", "atom"), ("rss", "rss")):
        if needle in hint:
            return fmt
    if ".htm" in hint or "text/html" in hint:
        return "html"
    return "text"


def parse(data: bytes, fmt: str, *, url: str | None = None, charset: str | None = None) -> Records:
    try:
        parser = FORMATS[fmt]
    except KeyError:
        raise BadInput(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})") from None
    try:
        return parser(data, url=url, charset=charset)
    except RecursionError:  # a hostile document nested thousands deep
        raise BadInput("the document is nested too deeply to be a feed") from None
