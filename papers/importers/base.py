"""What every importer shares: the record it yields, the error it raises, and decoding."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import datetime


class BadInput(ValueError):
    """The input cannot be imported; the message says what is wrong in one line."""


@dataclass
class PaperRecord:
    """One paper as a feed describes it, before normalising.

    ``upvotes`` and ``comment_count`` are None when the feed does not carry them, so an
    import from such a feed never resets the numbers another feed brought in.
    """

    title: str
    abstract: str = ""
    arxiv_id: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published_at: datetime | str | None = None
    upvotes: int | None = None
    comment_count: int | None = None
    abs_url: str = ""
    pdf_url: str = ""
    page_url: str = ""
    thumbnail_url: str = ""


_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
_SINGLE_BYTE = {"iso-8859-1", "latin-1", "latin1", "l1", "windows-1252", "cp1252", "us-ascii", "ascii", "iso-8859-15"}


def bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Bytes to text: a BOM wins, then the declared charset, then UTF-8.

    A declared single-byte charset (latin-1, cp1252) over bytes that are valid UTF-8 with
    non-ASCII characters is a wrong declaration: the bytes are read as UTF-8. Bytes that
    fit no candidate raise BadInput naming the offending byte and its offset.
    """
    encoding = bom_encoding(data)
    if encoding:
        return _decode(data, encoding, "byte-order mark")
    declared = (declared or "").strip().strip("\"'").lower() or None
    if declared:
        try:
            codecs.lookup(declared)
        except LookupError:
            raise BadInput(f"declares an unknown charset {declared!r}") from None
        if declared in _SINGLE_BYTE and not data.isascii():
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return _decode(data, declared, "declared charset")
    return _decode(data, "utf-8", "no charset declared, so")


def _decode(data: bytes, encoding: str, why: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise BadInput(
            f"is not valid {encoding} ({why}): byte 0x{bad} at offset {exc.start}; "
            "re-save it as UTF-8 or declare its charset"
        ) from None


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)


def html_declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


_XML_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_\-.:]+)["']""")


def parse_xml(data: bytes, charset: str | None = None):
    """A strict lxml tree (no entities resolved, no network); BadInput when malformed.

    The XML declaration (or BOM) decides the encoding; a declared single-byte charset over
    valid UTF-8 is a wrong declaration and is read as UTF-8, as ``decode_text`` does.
    """
    from lxml import etree

    match = _XML_DECLARED.match(data)
    declared = match.group(1).decode("ascii") if match else None
    if declared and declared.lower() in _SINGLE_BYTE and not data.isascii() and bom_encoding(data) is None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            data = data[: match.start(1)] + b"utf-8" + data[match.end(1) :]
    elif not declared and not bom_encoding(data) and charset and charset.lower() not in ("utf-8", "utf8"):
        text = decode_text(data, charset)
        data = text.encode("utf-8")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        message = exc.msg or str(exc)
        if "encoding" in message.lower() or "utf-8" in message.lower():
            decode_text(data, declared)  # names the offending byte when that is the problem
        if "premature end" in message.lower() or "not closed" in message.lower() or "end of data" in message.lower():
            raise BadInput(f"XML ends early (truncated?): {message}") from None
        raise BadInput(f"malformed XML: {message}") from None
    if root is None:
        raise BadInput("malformed XML: empty document")
    return root


def local_name(element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def children(element, name: str) -> list:
    return [child for child in element if local_name(child) == name]


def child_text(element, name: str) -> str:
    for child in children(element, name):
        return "".join(child.itertext())
    return ""
