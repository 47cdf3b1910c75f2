"""Filters and the paper list of the public pages.

``{% entries papers %}`` renders a list of papers in Python: a hundred entries through an
included template took about 60 ms of a day page's 85 (each variable and filter resolved
by the template engine), through ``format_html`` about 25 ms, with f-strings and ``escape``
a few."""

from html import escape

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe

from pages import links, periods, text

register = template.Library()


@register.simple_tag
def link(name, *args):
    """``{% url %}`` for the site's own pages, reversed once per process (``pages.links``)."""
    return links.url(name, *args)


@register.simple_tag
def asset(path):
    """``{% static %}``, its URL found once per process (``pages.links``)."""
    return links.static(path)


@register.filter
def plain(value):
    return text.plain_text(value or "")


@register.filter
def short_authors(authors, count=6):
    """'A, B, C' or the first ``count`` and 'et al.'"""
    authors = [str(a) for a in authors or []]
    shown = ", ".join(authors[:count])
    return shown + (" et al." if len(authors) > count else "")


_PK = 987654321


def _escape(value: str) -> str:
    """``escape``, skipped for text with nothing to escape (most titles, names and links:
    a day page made ``escape`` 700 times, a fifth of its CPU); five substring tests cost
    a third of one ``escape``."""
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        return escape(value)
    return value


def entry(paper, *, level: int = 2, url_pattern: str = "", snippet: tuple = (), note: str = "") -> str:
    """One paper of a list: upvotes, title (to its page), authors, a two-line snippet, links.
    A search result gives its own ``snippet``: (text, is_searched_word) pieces, those words
    in bold, and a ``note`` on why it matched. Every value goes through ``escape``."""
    title = text.plain_text(paper.title)
    safe_title = _escape(title)
    label = safe_title if len(title) <= 80 else _escape(title[:80])
    votes, plural = paper.upvotes, "" if paper.upvotes == 1 else "s"
    url = url_pattern.replace(str(_PK), str(paper.pk))
    parts = [
        f'<li class="entry"><div class="entry-votes" title="{votes} upvote{plural}"><span aria-hidden="true">▲</span> '
        f'{votes}<span class="visually-hidden"> upvote{plural}</span></div><div class="entry-body">'
        f'<h{level} class="entry-title"><a href="{url}">{safe_title}</a></h{level}>'
    ]
    if paper.authors:
        parts.append(f'<p class="entry-authors">{_escape(short_authors(paper.authors))}</p>')
    if snippet:
        marked = "".join(f"<strong>{_escape(piece)}</strong>" if bold else _escape(piece) for piece, bold in snippet)
        parts.append(f'<p class="entry-snippet entry-snippet-found">{marked}</p>')
    elif paper.abstract:
        parts.append(f'<p class="entry-snippet">{_escape(text.snippet(paper.abstract))}</p>')
    if note:
        parts.append(f'<p class="entry-why">{_escape(note)}</p>')
    links = "".join(
        f'<a href="{_escape(link.url)}" rel="noopener" aria-label="{link.label}: {label}">{link.label}</a>'
        for link in text.arxiv_links(paper)
    )
    if links:
        parts.append(f'<p class="entry-links">{links}</p>')
    parts.append("</div></li>")
    return "".join(parts)


@register.simple_tag
def entries(papers, level=2):
    """An ordered list of papers, or of search results (``pages.selectors.Found``)."""
    url_pattern = escape(links.url("pages:paper", _PK))  # reversed once, not per paper
    rows = []
    for item in papers:
        if isinstance(item, tuple):  # a search result
            rows.append(entry(item.paper, level=level, url_pattern=url_pattern, snippet=item.snippet, note=item.note))
        else:
            rows.append(entry(item, level=level, url_pattern=url_pattern))
    return mark_safe('<ol class="entries">' + "".join(rows) + "</ol>")  # noqa: S308 (each part made by format_html)


def _long_day(day) -> str:
    return f"{day.day} {day:%B %Y}"


@register.simple_tag
def paper_article(paper):
    """A paper page's title, authors, dates, links and abstract, in Python for the same
    reason as ``entries``: through the template engine this part was a paper page's
    largest cost once its neighbours were stored (``bench/README.md``, site_load)."""
    day = periods.listed_on(paper)
    parts = [f'<article class="paper-page">\n  <h1 class="paper-page-title math">{_escape(paper.title)}</h1>\n']
    if paper.authors:
        parts.append(f'  <p class="paper-page-authors">{_escape(", ".join(str(a) for a in paper.authors))}</p>\n')
    meta = [f'<a href="{links.url("pages:day", day.isoformat())}">Listed {_long_day(day)}</a>']
    if paper.published_at:
        meta.append(f"<span> · Published {_long_day(timezone.localtime(paper.published_at))}</span>")
    meta.append(f"<span> · ▲ {paper.upvotes} upvote{'' if paper.upvotes == 1 else 's'}</span>")
    if paper.arxiv_id:
        meta.append(f"<span> · arXiv {_escape(paper.arxiv_id)}</span>")
    meta.extend(f"<span> · {_escape(str(category))}</span>" for category in paper.categories or [])
    parts.append(f'  <p class="paper-page-meta">\n    {"".join(meta)}\n  </p>\n')
    buttons = [(link, "noopener") for link in text.arxiv_links(paper)]
    buttons += [(link, "noopener nofollow") for link in text.abstract_links(paper.abstract or "")]
    if paper.page_url:
        buttons.append((text.Link("Paper page", paper.page_url), "noopener"))
    if buttons:
        items = "".join(
            f'<li><a class="button secondary" href="{_escape(link.url)}" rel="{rel}">{link.label}</a></li>'
            for link, rel in buttons
        )
        parts.append(f'  <ul class="paper-page-links">{items}</ul>\n')
    if paper.abstract:
        parts.append(
            '  <section aria-labelledby="abstract-title">\n    <h2 id="abstract-title">Abstract</h2>\n'
            f'    <p class="paper-page-abstract math">{_escape(paper.abstract)}</p>\n  </section>\n'
        )
    parts.append("</article>")
    return mark_safe("".join(parts))  # noqa: S308 (every value through _escape)
