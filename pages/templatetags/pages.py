"""Filters of the public pages."""

from django import template

from pages import text

register = template.Library()


@register.filter
def snippet(abstract):
    return text.snippet(abstract or "")


@register.filter
def plain(value):
    return text.plain_text(value or "")


@register.filter
def short_authors(authors, count=6):
    """'A, B, C' or the first ``count`` and 'et al.'"""
    authors = [str(a) for a in authors or []]
    shown = ", ".join(authors[:count])
    return shown + (" et al." if len(authors) > count else "")


@register.filter
def arxiv_links(paper):
    return text.arxiv_links(paper)


@register.filter
def abstract_links(paper):
    return text.abstract_links(paper.abstract or "")
