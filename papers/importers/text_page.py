"""The plain-text papers page (what a browser's "save as text" of a trending page gives):
a header of short lines, then per paper a title line and an abstract paragraph, each
separated by blank lines.

The header is whatever precedes the first title-then-abstract pair; a paragraph that
breaks the pattern between papers is an error (a paper would be lost), while trailing
short lines (a footer) are ignored.
"""

from __future__ import annotations

import re

from papers.importers.base import BadInput, PaperRecord, decode_text

MAX_TITLE_LENGTH = 400
MIN_ABSTRACT_LENGTH = 150
_BLANK_LINES = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(\s|$)")


def _is_title(paragraph: str) -> bool:
    return "\n" not in paragraph and len(paragraph) <= MAX_TITLE_LENGTH


def _is_abstract(paragraph: str) -> bool:
    return len(paragraph) >= MIN_ABSTRACT_LENGTH and bool(_SENTENCE_END.search(paragraph))


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> list[PaperRecord]:
    text = decode_text(data, charset).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]
    records: list[PaperRecord] = []
    stray: list[int] = []
    index = 0
    while index < len(paragraphs):
        title = paragraphs[index]
        following = paragraphs[index + 1] if index + 1 < len(paragraphs) else ""
        if _is_title(title) and _is_abstract(following) and not _is_abstract(title):
            if records and stray:
                raise BadInput(
                    f"paragraph {stray[0] + 1} ({paragraphs[stray[0]][:60]!r}) is neither a title nor an abstract; "
                    "expected a title line followed by an abstract paragraph"
                )
            records.append(PaperRecord(title=title, abstract=" ".join(following.split())))
            index += 2
            continue
        if records:
            stray.append(index)
        index += 1
    if not records:
        raise BadInput("no papers found: expected a title line followed by an abstract paragraph")
    return records
