"""The plain-text papers page (what a browser's "save as text" of a trending page gives):
a header of short lines, then per paper a title line and an abstract paragraph, each
separated by blank lines, under date headings ("Mar 13").

The header is whatever precedes the first title-then-abstract pair; a paragraph that
breaks the pattern between papers is an error (a paper would be lost), while date
headings date the papers under them and trailing short lines (a footer) are ignored.

Titles and abstracts must be prose: program source (whose docstrings hold sentences too)
is refused, not imported as papers. A heading without a year is the most recent such day
that is not in the future.
"""

from __future__ import annotations

import re
import textwrap
from datetime import date

from django.utils import timezone

from papers.importers.base import BadInput, PaperRecord, Records, decode_text

MAX_TITLE_LENGTH = 400
MIN_ABSTRACT_LENGTH = 150
MIN_ABSTRACT_WORDS = 20
MAX_SYMBOL_SHARE = 0.06  # of an abstract's visible characters: brackets, '=', '_', '{', ';' ...
MAX_TITLE_SYMBOL_SHARE = 0.15  # titles are short: "Why x < y: the <think> token"
MIN_WORD_SHARE = 0.75  # of the tokens: words, with their punctuation
MAX_CODE_LINE_SHARE = 0.1  # of a document's lines: more, and it is program source

_BLANK_LINES = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(\s|$)")
_SYMBOLS = re.compile(r"[(){}\[\]=_<>;#*\\|@$`^~]")
_WORD = re.compile(r"[(\[\"'“‘]*[^\W\d_][\w'’\-/.+]*[)\]\"'”’.,;:!?%]*")
_CODE_LINE = re.compile(
    r"""^(?:(?:async\s+)?def\s+\w+\s*\(|class\s+\w+\s*[(:]|import\s+[\w.]+(?:\s*,\s*[\w.]+)*$
    |from\s+[\w.]+\s+import\s|@[\w.]+(?:\(.*)?$|"{3}|'{3}|//|/\*
    |(?:return|raise|yield)\s+[\w.]+\s*(?:[(\[,]|$)|(?:pass|break|continue)$
    |(?:if|elif|while|for|with|try|except|else|finally)\b.*:$
    |[\w.\[\]'"]+\s*(?:=|\+=|-=|:=)\s*\S.*$|.*[;{}]$|.*\)\s*(?:->.*)?:$)""",
    re.X,
)
_MONTH_NAMES = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_MONTHS = {m: n for n, m in enumerate(_MONTH_NAMES.split("|"), start=1)}
_MONTH = rf"(?P<month>{_MONTH_NAMES})[a-z]*\.?"
_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?"
_HEADINGS = [
    re.compile(rf"^{_WEEKDAY}{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{{4}}))?$", re.I),
    re.compile(rf"^{_WEEKDAY}(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}(?:,?\s+(?P<year>\d{{4}}))?$", re.I),
]
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def heading_day(paragraph: str, *, today: date) -> date | None:
    """The day a date heading names ("Mar 13", "Friday, 13 March 2026", "2026-03-13");
    without a year, the most recent such day not after ``today``."""
    text = paragraph.strip()
    if len(text) > 40 or "\n" in text:
        return None
    iso = _ISO_DAY.match(text)
    if iso:
        return _day(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    for pattern in _HEADINGS:
        match = pattern.match(text)
        if match:
            month, day = _MONTHS[match.group("month").lower()], int(match.group("day"))
            if match.group("year"):
                return _day(int(match.group("year")), month, day)
            for year in range(today.year, today.year - 8, -1):  # 29 February waits for a leap year
                found = _day(year, month, day)
                if found is not None and found <= today:
                    return found
    return None


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _is_code(line: str) -> bool:
    return bool(_CODE_LINE.match(line.strip()))


def _is_prose(paragraph: str, *, min_share: float, max_symbols: float) -> bool:
    visible = re.sub(r"\s", "", paragraph)
    tokens = paragraph.split()
    if not visible or not tokens or any(_is_code(line) for line in paragraph.splitlines()):
        return False
    words = sum(1 for token in tokens if _WORD.fullmatch(token))
    return len(_SYMBOLS.findall(visible)) <= max_symbols * len(visible) and words >= min_share * len(tokens)


def _is_title(paragraph: str) -> bool:
    return (
        "\n" not in paragraph
        and len(paragraph) <= MAX_TITLE_LENGTH
        and _is_prose(paragraph, min_share=0.5, max_symbols=MAX_TITLE_SYMBOL_SHARE)
    )


def _is_abstract(paragraph: str) -> bool:
    return (
        len(paragraph) >= MIN_ABSTRACT_LENGTH
        and len(paragraph.split()) >= MIN_ABSTRACT_WORDS
        and bool(_SENTENCE_END.search(paragraph))
        and _is_prose(textwrap.dedent(paragraph), min_share=MIN_WORD_SHARE, max_symbols=MAX_SYMBOL_SHARE)
    )


def _refuse_source_code(text: str) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    code = sum(1 for line in lines if _is_code(line))
    if code >= 3 and code > MAX_CODE_LINE_SHARE * len(lines):
        raise BadInput(
            f"this looks like program source, not a page of papers ({code} of {len(lines)} lines are code); "
            "expected title lines followed by abstract paragraphs"
        )


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> Records:
    text = decode_text(data, charset).lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    _refuse_source_code(text)
    paragraphs = [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]
    today = timezone.localdate()
    records: list[PaperRecord] = []
    stray: list[int] = []
    day = None
    index = 0
    while index < len(paragraphs):
        title = paragraphs[index]
        following = paragraphs[index + 1] if index + 1 < len(paragraphs) else ""
        heading = heading_day(title, today=today)
        if heading is not None:
            day, index = heading, index + 1
            continue
        if _is_title(title) and _is_abstract(following) and not _is_abstract(title):
            if records and stray:
                raise BadInput(
                    f"paragraph {stray[0] + 1} ({paragraphs[stray[0]][:60]!r}) is neither a title nor an abstract; "
                    "expected a title line followed by an abstract paragraph"
                )
            records.append(PaperRecord(title=title, abstract=" ".join(following.split()), announced_on=day))
            index += 2
            continue
        if records:
            stray.append(index)
        index += 1
    if not records:
        raise BadInput("no papers found: expected a title line followed by an abstract paragraph")
    return Records(records)
