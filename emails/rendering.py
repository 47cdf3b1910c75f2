"""Rendering: each email is a name, a subject, a text part and an MJML template.

``templates/emails/<name>.mjml`` is compiled by mjml-python into HTML once per
process (it keeps its Jinja2 placeholders; loops go inside ``<mj-raw>``), then
rendered per person with Jinja2. Subjects and text parts use a second Jinja2
environment with autoescape off: they are not HTML.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
from django.conf import settings
from mjml import mjml2html

TEMPLATE_DIR = Path(settings.BASE_DIR) / "templates" / "emails"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _truncate_words(value: str, length: int = 45) -> str:
    words = (value or "").split()
    return " ".join(words[:length]) + ("…" if len(words) > length else "")


@functools.lru_cache(maxsize=8192)
def _wrap(value: str, width: int = 79) -> str:
    """Jinja2's ``wordwrap`` (``textwrap``), remembered: a digest issue wraps the same
    titles and abstracts for thousands of people, and ``textwrap`` is slow."""
    return jinja2.filters.do_wordwrap(_text_env, value, width)


def _environment(*, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=autoescape,  # noqa: S701 (off only for text parts and subjects)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["excerpt"] = _truncate_words
    return env


_html_env = _environment(autoescape=True)
_text_env = _environment(autoescape=False)
_text_env.filters["wordwrap"] = lambda value, width=79: _wrap(str(value), width)


@functools.lru_cache(maxsize=8192)
def _wrap_indented(value: str, width: int, indent: int) -> str:
    """``value`` wrapped so that its lines, indented by ``indent`` after the first, stay
    within ``width`` columns (``wordwrap(width - indent) | indent(indent)``), remembered."""
    return jinja2.filters.do_indent(_wrap(value, max(width - indent, 20)), indent)


_text_env.filters["wrap_indented"] = lambda value, width=79, indent=3: _wrap_indented(str(value), width, indent)


@functools.cache
def compiled_html(name: str) -> jinja2.Template:
    """The MJML template compiled to HTML, once per process, as a Jinja2 template."""
    return _html_env.from_string(mjml_to_html((TEMPLATE_DIR / f"{name}.mjml").read_text(encoding="utf-8")))


def mjml_to_html(source: str) -> str:
    """MJML compiled to HTML with short lines and no web fonts.

    ``fonts={}``: MJML links Google Fonts when a font stack names "Roboto"; every open
    would then ask Google for it (a privacy leak, a request per reader). The stack falls
    back to the reader's system fonts.
    """
    return short_lines(str(mjml2html(source, fonts={})))


# Between these and the next tag (or template tag), a line break changes nothing on screen.
_BLOCK_BOUNDARY = re.compile(
    r"(</(?:td|tr|tbody|table|div|p|head|style|title)>|<!\[endif\]-->|<(?:tr|tbody)>)(?=<|\{%)"
)


def short_lines(html: str) -> str:
    """Break MJML's long lines at block boundaries.

    MJML writes lines of several KB; a body line over 998 characters (RFC 5322) makes
    the email package quoted-printable-encode the whole HTML part, in pure Python for
    every message, and makes the part a third bigger.
    """
    return _BLOCK_BOUNDARY.sub("\\1\n", html)


@functools.cache
def _text_template(name: str) -> jinja2.Template:
    return _text_env.get_template(f"{name}.txt")


@functools.cache
def _subject_template(name: str) -> jinja2.Template:
    return _text_env.get_template(f"{name}.subject.txt")


def render(name: str, context: dict) -> RenderedEmail:
    """Render email ``name`` for one person."""
    context = {
        "site_url": settings.SITE_URL,
        "sender_name": settings.SENDER_NAME,
        "sender_address": settings.SENDER_POSTAL_ADDRESS,
        **context,
    }
    subject = " ".join(_subject_template(name).render(context).split())
    return RenderedEmail(
        subject=subject,
        text=_text_template(name).render(context).strip() + "\n",
        html=compiled_html(name).render(context),
    )
