"""What every importer shares: the record it yields, the error it raises, and decoding."""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime


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
    doi: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published_at: datetime | str | None = None
    announced_on: date | str | None = None  # the day it was announced or listed; dates the paper
    update_only: bool = False  # news about a known paper (an arXiv replacement): never creates one
    upvotes: int | None = None
    comment_count: int | None = None
    abs_url: str = ""
    pdf_url: str = ""
    page_url: str = ""
    thumbnail_url: str = ""


class Records(list):
    """A parser's papers, and how many entries it skipped as unusable (no title)."""

    skipped: int = 0

    def __init__(self, records=(), *, skipped: int = 0):
        super().__init__(records)
        self.skipped = skipped


def usable(candidates, kind: str) -> Records:
    """The records among a source's parsed entries (None stands for an entry without a title,
    skipped and counted); BadInput when none is usable."""
    records, skipped = [], 0
    for record in candidates:
        if record is None:
            skipped += 1
        else:
            records.append(record)
    if not records:
        raise no_papers(kind, skipped)
    return Records(records, skipped=skipped)


def no_papers(kind: str, skipped: int) -> BadInput:
    """The error for a source with nothing usable, saying why when entries were skipped."""
    if skipped:
        return BadInput(f"no papers found: none of the {kind} has a title ({skipped} skipped)")
    return BadInput(f"no papers found: the feed has no {kind}")


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
            known = codecs.lookup(declared)._is_text_encoding
        except (LookupError, ValueError):
            known = False
        if not known:  # as browsers and feed readers do: UTF-8, else a clear error
            return _decode(data, "utf-8", f"the declared charset {declared[:40]!r} is unknown, so")
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
    except (UnicodeError, LookupError, ValueError) as exc:  # 'rot13', 'base64': codecs but not charsets
        raise BadInput(f"cannot be read as {encoding!r} ({why}): {exc}") from None


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)


def html_declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def load_json(data: bytes, charset: str | None = None):
    """The JSON document in ``data``; BadInput saying where it breaks (or that it is cut
    short, or nested too deeply to be data)."""
    text = decode_text(data, charset)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # An unterminated string runs to the end of the text, so it is cut short too.
        ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "JSON ends early (truncated?)" if ends_early else "malformed JSON"
        raise BadInput(f"{what}: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise BadInput("malformed JSON: nested too deeply to be a list of papers") from None
