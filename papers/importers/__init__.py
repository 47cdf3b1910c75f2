"""Importers: one module per feed format, each ``parse(data, *, url, charset)`` returning
``PaperRecord`` items, all normalised by ``normalise.normalise_record``.

``detect_format`` sniffs the bytes (JSON, Atom, RSS, HTML, otherwise plain text); the
file name or Content-Type only break ties.
"""

from __future__ import annotations

import re

from papers.importers import atom, daily_json, html_page, rss, text_page
from papers.importers.base import BadInput, PaperRecord, bom_encoding

__all__ = ["FORMATS", "BadInput", "PaperRecord", "detect_format", "parse"]

FORMATS = {
    "daily-json": daily_json.parse,
    "html": html_page.parse,
    "atom": atom.parse,
    "rss": rss.parse,
    "text": text_page.parse,
}

_XML_START = re.compile(
    r"^(?:<\?xml[^>]*>|<!--.*?-->|<!DOCTYPE[^>]*>|\s)*<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)", re.S
)
_HTML_HINT = re.compile(r"<(?:!doctype\s+html|html|head|body|div|article|main|section|meta|title|p|h[1-6])[\s>]", re.I)


def detect_format(data: bytes, *, name: str = "", content_type: str = "") -> str:
    """The format name for ``data``; raises BadInput for an empty body."""
    head_bytes = data[:8192]
    encoding = bom_encoding(head_bytes) or "utf-8"
    head = head_bytes.decode(encoding, errors="replace").lstrip("\ufeff").lstrip()
    if not head:
        raise BadInput("the body is empty: no papers found")
    if head[0] in "[{":
        return "daily-json"
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


def parse(data: bytes, fmt: str, *, url: str | None = None, charset: str | None = None) -> list[PaperRecord]:
    try:
        parser = FORMATS[fmt]
    except KeyError:
        raise BadInput(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})") from None
    return parser(data, url=url, charset=charset)
