"""One normalising step for every importer, so a paper seen in two feeds is one row.

- The key is the arXiv id without version (``2401.12345v2`` and ``arXiv:2401.12345``
  are ``2401.12345``; old-style ``hep-th/9901001v3`` is ``hep-th/9901001``; an arXiv
  DOI ``10.48550/arXiv.2401.12345`` too), else ``doi:<lower-cased DOI>``, else
  ``title:<hash of the normalised title>``. Matching one paper across keys (the same
  paper from a source with an id and one without) is the upsert's job.
- Text is NFC, one space between words, no control or zero-width characters.
- Markup in titles and abstracts becomes plain text (script and style dropped); text
  that merely contains ``<`` stays as it is and is escaped wherever it is shown.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup
from django.utils.dateparse import parse_date, parse_datetime

from papers.importers.base import BadInput, PaperRecord

MAX_URL_LENGTH = 500
MAX_ARXIV_ID_LENGTH = 32
MAX_DOI_LENGTH = 200
MAX_COUNT = 2**31 - 1  # the database's integer
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200

_NEW_ID = re.compile(r"(?<![\d.])(\d{2}(?:0[1-9]|1[0-2])\.\d{4,5})(?:v\d+)?(?!\d)")
_OLD_ID = re.compile(r"(?<![\w\-.])([a-z][a-z\-]*(?:\.[a-z]{2})?/\d{7})(?:v\d+)?(?!\d)", re.IGNORECASE)

_HTML_TAGS = (
    "a|abbr|address|area|article|aside|audio|b|base|bdi|bdo|big|blockquote|body|br|button|canvas|caption|center|"
    "cite|code|col|colgroup|dd|del|details|dfn|dialog|div|dl|dt|em|embed|fieldset|figcaption|figure|font|footer|"
    "form|frame|frameset|h[1-6]|head|header|hr|html|i|iframe|img|input|ins|kbd|label|legend|li|link|main|map|mark|"
    "math|meta|meter|nav|noscript|object|ol|optgroup|option|output|p|param|picture|pre|q|s|samp|script|section|"
    "select|small|source|span|strike|strong|style|sub|summary|sup|svg|table|tbody|td|template|textarea|tfoot|th|"
    "thead|title|tr|tt|u|ul|var|video|wbr|"
    # obsolete elements feeds still carry
    "acronym|applet|basefont|bgsound|blink|dir|frame|isindex|keygen|listing|marquee|menu|multicol|nextid|nobr|"
    "noembed|noframes|plaintext|rb|rp|rt|rtc|ruby|spacer|time|data|xmp"
)
_MARKUP = re.compile(
    rf"<(?:/?(?:{_HTML_TAGS})(?=[\s/>])[^>]*>|!--)|&(?:#\d{{1,7}}|#x[0-9a-f]{{1,6}}|[a-z][a-z0-9]{{1,31}});",
    re.IGNORECASE,
)
_CLOSING_TAG = re.compile(r"</([a-z][\w:.-]{0,40})\s*>", re.IGNORECASE)
# Dropped with their content. Fallback content of <object>, <embed> and <iframe> is text
# meant for readers, and an unclosed one must not swallow the rest of a title.
DROPPED_ELEMENTS = ("script", "style", "noscript", "template")
BLOCK_ELEMENTS = (
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
)
# Control and format characters (zero-width space, soft hyphen, BOM, bidi marks...).
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")


def clean_text(value) -> str:
    """Plain, single-spaced NFC text; markup converted to its text. Idempotent."""
    if value is None:
        return ""
    text = str(value)
    for _ in range(10):
        cleaned = _clean_once(text)
        if cleaned == text:
            break
        text = cleaned
    return text


def html_to_text(markup: str) -> str:
    """The text a browser shows for ``markup`` (a field declared HTML): any tag, known or
    not, goes; script and style go with their content."""
    soup = BeautifulSoup(markup, "html.parser")
    for element in soup(DROPPED_ELEMENTS):
        element.decompose()
    for element in soup(BLOCK_ELEMENTS):  # words in separate blocks stay separate
        element.insert_before(" ")
        element.insert_after(" ")
    # An unterminated comment is left as text by the parser; a browser would hide it.
    return soup.get_text().replace("<!--", "")


def _has_markup(text: str) -> bool:
    """Known HTML tags or entities, or any other tag opened and closed again
    (``<blink>hot</blink>``); a lone ``<think>`` or ``x < y`` is text."""
    if _MARKUP.search(text):
        return True
    for name in {m.group(1).lower() for m in _CLOSING_TAG.finditer(text)}:
        if re.search(rf"<{re.escape(name)}(?:\s[^<>]*)?/?>", text, re.IGNORECASE):
            return True
    return False


def _clean_once(text: str) -> str:
    if _has_markup(text):
        text = html_to_text(text)
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text).strip()


def normalise_arxiv_id(value) -> str:
    """The arXiv id in ``value`` (a bare id, ``arXiv:...``, an abs/pdf URL), without
    version; "" when there is none."""
    if not value:
        return ""
    text = str(value).strip()
    match = _NEW_ID.search(text)
    if match:
        return match.group(1)
    match = _OLD_ID.search(text)
    if match:
        archive, number = match.group(1).split("/")
        name, _, subject = archive.partition(".")
        return f"{name.lower()}{'.' + subject.upper() if subject else ''}/{number}"
    return ""


def title_fingerprint(title: str) -> str:
    """The title reduced to what identifies it: case, accents' composition, punctuation
    and spacing do not matter."""
    text = unicodedata.normalize("NFKC", clean_text(title)).casefold()
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", text)).strip()


def title_key(title: str) -> str:
    digest = hashlib.sha256(title_fingerprint(title).encode("utf-8")).hexdigest()
    return f"title:{digest[:32]}"


_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>]+)", re.IGNORECASE)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)


def normalise_doi(value) -> str:
    """The DOI in ``value`` (bare, ``doi:...`` or a doi.org URL), lower-cased as DOIs
    compare case-blind; "" when there is none or it is too long to store."""
    match = _DOI.search(str(value or ""))
    if not match:
        return ""
    doi = match.group(1).rstrip(".,;)]").lower()
    return doi if len(doi) <= MAX_DOI_LENGTH else ""


def doi_key(doi: str) -> str:
    text = f"doi:{doi}"
    if len(text) <= 80:
        return text
    return f"doi:{hashlib.sha256(doi.encode('utf-8')).hexdigest()[:32]}"


def paper_key(*, arxiv_id: str, title: str, doi: str = "") -> str:
    """arXiv id without version, else DOI, else the normalised title."""
    arxiv = normalise_arxiv_id(arxiv_id)
    if arxiv:
        return arxiv
    doi = normalise_doi(doi)
    return doi_key(doi) if doi else title_key(title)


def clean_url(value, base: str | None = None) -> str:
    """An absolute http(s) URL or "" (``javascript:`` and friends never get through)."""
    if not value:
        return ""
    url = clean_text(value).replace(" ", "%20")
    if base:
        url = urljoin(base, url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_URL_LENGTH:
        return ""
    return url


def parse_when(value) -> datetime | None:
    """ISO 8601, RFC 822 or a plain date, as an aware datetime (UTC when no zone)."""
    if not value:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        moment = None
        try:
            moment = parse_datetime(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            moment = None
        if moment is None:
            try:
                day = parse_date(text)
            except ValueError:
                day = None
            if day is not None:
                moment = datetime.combine(day, time())
        if moment is None:
            try:
                moment = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:  # nonsense, and year 1 or 9999 overflows in UTC
        return None
    return moment


def parse_day(value) -> date | None:
    """The calendar day of ``value`` as the source wrote it (its own time zone)."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    moment = parse_when(value)
    return moment.date() if moment else None


def parse_count(value) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip().replace(",", ""))
    except ValueError:
        return None
    return min(max(number, 0), MAX_COUNT)


def _unique(values) -> list[str]:
    seen, result = set(), []
    for value in values:
        text = clean_text(value)
        if text and text not in seen:
            seen.add(text)
            result.append(text)
    return result


@dataclass
class CleanPaper:
    """A record ready to store: every field valid for the Paper model.

    ``update_only`` (not stored) marks news about a paper that must never create it,
    such as an arXiv replacement announcement.
    """

    key: str
    title: str
    abstract: str = ""
    arxiv_id: str = ""
    doi: str = ""
    title_key: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    announced_on: date | None = None
    upvotes: int | None = None
    comment_count: int | None = None
    abs_url: str = ""
    pdf_url: str = ""
    page_url: str = ""
    thumbnail_url: str = ""
    update_only: bool = False


def normalise_record(record: PaperRecord, *, base_url: str | None = None) -> CleanPaper:
    title = clean_text(record.title)
    if not title:
        raise BadInput("a paper has no title")
    doi = normalise_doi(record.doi)
    arxiv_id = normalise_arxiv_id(record.arxiv_id)
    if not arxiv_id and _ARXIV_DOI.match(doi):
        arxiv_id = normalise_arxiv_id(_ARXIV_DOI.match(doi).group(1))
    if len(arxiv_id) > MAX_ARXIV_ID_LENGTH:
        arxiv_id = ""
    published_at = parse_when(record.published_at)
    announced_on = parse_day(record.announced_on)
    if announced_on is None and not record.update_only and published_at is not None:
        announced_on = published_at.date()
    return CleanPaper(
        key=paper_key(arxiv_id=arxiv_id, doi=doi, title=title),
        title=title,
        abstract=clean_text(record.abstract),
        arxiv_id=arxiv_id,
        doi=doi,
        title_key=title_key(title),
        authors=[name for name in map(clean_text, record.authors or []) if name],
        categories=_unique(record.categories or []),
        published_at=published_at,
        announced_on=announced_on,
        upvotes=parse_count(record.upvotes),
        comment_count=parse_count(record.comment_count),
        abs_url=clean_url(record.abs_url, base_url),
        pdf_url=clean_url(record.pdf_url, base_url),
        page_url=clean_url(record.page_url, base_url),
        thumbnail_url=clean_url(record.thumbnail_url, base_url),
        update_only=bool(record.update_only),
    )
