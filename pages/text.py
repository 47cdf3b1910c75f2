"""Abstracts as the pages show them: LaTeX maths as Unicode where no script renders it
(snippets, feeds), the links an abstract mentions, and arXiv links from the id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

SNIPPET_CHARS = 320  # two lines on a wide screen and then some: CSS clamps to two lines
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)", re.DOTALL)
_URL = re.compile(r"https?://[^\s<>\"'{}|\\^`\]\[]+", re.IGNORECASE)
_CODE_HOSTS = ("github.com", "gitlab.com", "huggingface.co", "bitbucket.org", "codeberg.org")


@lru_cache(maxsize=4096)
def _math_to_text(latex: str) -> str:
    from pylatexenc.latex2text import LatexNodes2Text

    try:
        return LatexNodes2Text(math_mode="text").latex_to_text(latex).strip()
    except Exception:  # pylatexenc is strict about some input; show the source then
        return latex


@lru_cache(maxsize=8192)
def plain_text(text: str) -> str:
    """``text`` with its maths (``$...$``, ``$$...$$``, ``\\(...\\)``) as Unicode: ``$\\alpha$``
    -> ``α``. Only the maths is converted: outside it a ``%`` or ``\\`` is plain text."""
    if "$" not in text and "\\(" not in text:
        return text
    return _MATH.sub(lambda m: _math_to_text(next(g for g in m.groups() if g is not None)), text)


_ODD_ASCII_SPACES = ("  ", "\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


def _single_spaced(head: str) -> bool:
    """True when ``head`` is already what collapsing its spaces would make of it: ASCII
    (the other whitespace ``str.split`` knows is not), not starting or ending with a
    space, no two spaces together and no other whitespace."""
    if not head.isascii() or head[0].isspace() or head[-1] == " ":
        return False
    return all(space not in head for space in _ODD_ASCII_SPACES)  # a tenth of a regex's time


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of an abstract in plain text, cut at a word. Only the start's spaces are
    collapsed: a list shows a hundred snippets of abstracts ten times as long, and most
    starts need no collapsing at all, which a few substring tests tell (a day page seen
    for the first time spent 0.5 ms collapsing its hundred, a tenth of its CPU)."""
    text = text or ""
    plain = plain_text(text) if "$" in text or "\\(" in text else text  # no cache entry when no maths
    head = plain[: limit + 1]
    if len(head) > limit and _single_spaced(head):
        return _cut(head, limit)
    text = " ".join(plain[: 2 * limit].split())
    if len(text) <= limit and len(plain) > 2 * limit:  # mostly spaces: take it all
        text = " ".join(plain.split())
    if len(text) <= limit:
        return text
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


@dataclass(frozen=True)
class Link:
    label: str
    url: str


def abstract_links(abstract: str) -> list[Link]:
    """Code and project pages an abstract names ("Code: https://github.com/..."), each once."""
    links, seen = [], set()
    for match in _URL.finditer(abstract or ""):
        url = match.group(0).rstrip(".,;:)")
        host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
        if not host or url in seen or host.endswith("arxiv.org"):
            continue
        seen.add(url)
        label = "Code" if host in _CODE_HOSTS else "Project page"
        links.append(Link(label, url))
    return links


def arxiv_links(paper) -> list[Link]:
    """arXiv abstract and PDF links: those the feed gave, else made from the arXiv id."""
    abs_url = paper.abs_url or (f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else "")
    pdf_url = paper.pdf_url or (f"https://arxiv.org/pdf/{paper.arxiv_id}" if paper.arxiv_id else "")
    return [link for link in (Link("arXiv", abs_url), Link("PDF", pdf_url)) if link.url]
