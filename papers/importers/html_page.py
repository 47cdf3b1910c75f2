"""A papers web page, read with beautifulsoup4.

First the JSON the page embeds for its scripts in ``data-props`` attributes (a list of
daily-papers items, or one paper on a paper page). When no element carries paper data,
the visible cards: each ``<article>`` with a heading (the title), a link to
``/papers/<id>`` or an arXiv abstract page, a paragraph (the abstract), and optionally
elements whose class names mention ``author``, ``upvote``/``vote``, ``comment``, and an
``<img>`` (the thumbnail).
"""

from __future__ import annotations

import json
import re
import warnings
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag, XMLParsedAsHTMLWarning

from papers.importers.base import BadInput, PaperRecord, Records, decode_text, html_declared_charset
from papers.importers.daily_json import record_from_paper, records_from_items, site_of
from papers.importers.normalise import clean_text, normalise_arxiv_id

_PAPER_LINK = re.compile(r"/(?:papers|abs|pdf)/([^/?#]+(?:/\d{7})?)")
_NUMBER = re.compile(r"\d[\d,]*")


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> Records:
    text = decode_text(data, charset or html_declared_charset(data))
    with warnings.catch_warnings():  # a feed forced to this format is read as HTML all the same
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(text, "lxml")
    site = site_of(url)
    records = _from_data_props(soup, site)
    if not records:
        records = _from_cards(soup, base=url or site)
    if not records:
        raise BadInput("no papers found: the page has no paper data in data-props and no paper cards")
    return Records(records)


def _from_data_props(soup: BeautifulSoup, site: str) -> list[PaperRecord]:
    """Papers in the JSON of ``data-props``; a day page's ``date`` dates its papers."""
    records = []
    for element in soup.find_all(attrs={"data-props": True}):
        try:
            props = json.loads(element["data-props"])
        except (json.JSONDecodeError, TypeError, RecursionError):
            continue
        found = _records_in(props, site, depth=0)
        day = props.get("date") if isinstance(props, dict) else None
        for record in found:
            if isinstance(day, str) and not record.announced_on:
                record.announced_on = day
        records.extend(found)
    return records


def _is_item(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("paper"), dict) and bool(value["paper"].get("title"))


def _is_paper(value) -> bool:
    return isinstance(value, dict) and bool(value.get("title")) and bool(value.get("id")) and "summary" in value


def _records_in(value, site: str, depth: int) -> list[PaperRecord]:
    if depth > 6:
        return []
    if isinstance(value, list):
        if value and all(_is_item(v) or _is_paper(v) for v in value):
            return records_from_items(value, site=site)
        return [r for v in value for r in _records_in(v, site, depth + 1)]
    if isinstance(value, dict):
        if _is_item(value):
            return [record_from_paper(value["paper"], value, site=site)]
        return [r for v in value.values() for r in _records_in(v, site, depth + 1)]
    return []


def _class_mentions(element: Tag, *words: str) -> bool:
    classes = " ".join(element.get("class") or []).lower()
    return any(word in classes for word in words)


def _find_by_class(card: Tag, *words: str) -> list[Tag]:
    return [e for e in card.find_all(True) if _class_mentions(e, *words)]


def _count(card: Tag, *words: str) -> int | None:
    for word in words:
        for attribute in (f"data-{word}s", f"data-{word}"):
            if card.has_attr(attribute):
                return card[attribute]
    for element in _find_by_class(card, *words):
        match = _NUMBER.search(element.get_text(" "))
        if match:
            return match.group(0)
    return None


def _community_count(card: Tag) -> str | None:
    """The number on a card's link to the paper's discussion (``/papers/<id>#community``)."""
    for link in card.find_all("a", href=re.compile(r"#community$")):
        match = _NUMBER.search(link.get_text(" "))
        if match:
            return match.group(0)
    return None


def _from_cards(soup: BeautifulSoup, base: str) -> list[PaperRecord]:
    records = []
    for card in soup.find_all("article"):
        heading = card.find(["h1", "h2", "h3", "h4"])
        if heading is None or not clean_text(heading.get_text(" ")):
            continue
        link = heading.find("a", href=True) or card.find("a", href=_PAPER_LINK)
        href = link["href"] if link else ""
        match = _PAPER_LINK.search(href)
        arxiv_id = normalise_arxiv_id(match.group(1)) if match else ""
        abstract = next(iter(_find_by_class(card, "abstract", "summary")), None) or card.find("p")
        authors = []
        for element in _find_by_class(card, "author"):
            if not _find_by_class(element, "author"):  # the innermost author elements
                authors.extend(part for part in re.split(r",| and ", element.get_text(" ")) if part.strip())
        image = card.find("img", src=True)
        records.append(
            PaperRecord(
                title=heading.get_text(" "),
                abstract=abstract.get_text(" ") if abstract else "",
                arxiv_id=arxiv_id,
                authors=authors,
                upvotes=_count(card, "upvote", "vote"),
                comment_count=_count(card, "comment") or _community_count(card),
                abs_url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else "",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "",
                page_url=_absolute(href, base),
                thumbnail_url=_absolute(image["src"], base) if image else "",
            )
        )
    return records


def _absolute(href: str, base: str) -> str:
    return urljoin(base, href) if href else ""
