"""Every email the service sends: a name, a subject, a text part and an MJML template.

``templates/emails/<name>.mjml`` is compiled by mjml-python into HTML once per
process (it keeps its Jinja2 placeholders; loops go inside ``<mj-raw>``), then
rendered per person with Jinja2. Subjects and text parts use a second Jinja2
environment with autoescape off: they are not HTML.

When ``DKIM_SELECTOR`` and ``DKIM_PRIVATE_KEY_FILE`` are set, every message built here
is DKIM-signed (dkimpy) over the final bytes, covering the ``List-Unsubscribe``
headers, so a receiver can trust the one-click unsubscribe target.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email import quoprimime
from email.utils import make_msgid
from pathlib import Path

import dkim
import jinja2
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
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


@functools.cache
def compiled_html(name: str) -> jinja2.Template:
    """The MJML template compiled to HTML, once per process, as a Jinja2 template."""
    source = (TEMPLATE_DIR / f"{name}.mjml").read_text(encoding="utf-8")
    return _html_env.from_string(short_lines(str(mjml2html(source))))


# Between these and the next tag, a line break changes nothing on screen.
_BLOCK_BOUNDARY = re.compile(r"(</(?:td|tr|tbody|table|div|p|head|style|title)>|<!\[endif\]-->|<(?:tr|tbody)>)(?=<)")


def short_lines(html: str) -> str:
    """Break MJML's long lines at block boundaries.

    MJML writes lines of several KB; a body line over 998 characters (RFC 5322) makes
    the email package quoted-printable-encode the whole HTML part, which costs ~1 ms
    per message in pure Python and makes the part a third bigger.
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


def _single_line(value: str) -> str:
    """Header values never carry a line break (no header injection)."""
    return " ".join(str(value).split())


def encoded_words(value: str) -> str:
    """A header value as RFC 2047 "Q" encoded words (plain ASCII stays as it is).

    ``email.header.Header`` does the same but sizes its chunks by re-measuring growing
    prefixes (about 1 ms for one subject line). Here each word is filled character by
    character up to 57 encoded characters (69 with its frame, so that even the first
    word fits on the line after "Subject: "), never splitting one.
    """
    if value.isascii():
        return value
    words, chunk, size = [], [], 0
    for char in value:
        encoded = quoprimime.header_encode(char.encode(), "utf-8")[10:-2]  # strip =?utf-8?q? ?=
        if size + len(encoded) > 57:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded)
    words.append("".join(chunk))
    return " ".join(f"=?utf-8?q?{word}?=" for word in words if word)


def new_message_id() -> str:
    return make_msgid(domain=settings.MAIL_DOMAIN)


# Headers the DKIM signature covers (those present in the message are signed).
DKIM_SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)


@functools.cache
def _dkim_key(path: str) -> bytes:
    return Path(path).read_bytes()


def dkim_signature(message_bytes: bytes) -> str | None:
    """The ``DKIM-Signature`` header value for these bytes, or None when DKIM is not configured."""
    if not (settings.DKIM_SELECTOR and settings.DKIM_PRIVATE_KEY_FILE):
        return None
    present = {line.split(b":", 1)[0].strip().lower() for line in message_bytes.split(b"\r\n\r\n", 1)[0].splitlines()}
    header = dkim.sign(
        message_bytes,
        settings.DKIM_SELECTOR.encode(),
        settings.DKIM_DOMAIN.encode(),
        _dkim_key(settings.DKIM_PRIVATE_KEY_FILE),
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[h for h in DKIM_SIGNED_HEADERS if h in present],
    )
    name, value = header.decode("ascii").split(":", 1)
    assert name == "DKIM-Signature"
    # Relaxed header canonicalisation unfolds whitespace, so refolding by the email
    # package does not break the signature.
    return " ".join(value.split())


class SignedEmailMessage(EmailMultiAlternatives):
    """A message that adds its DKIM signature when its final form is built."""

    def message(self):
        # The MIME form gets the subject already encoded (see ``encoded_words``); the
        # attribute stays readable for API backends (anymail) and tests.
        subject, self.subject = self.subject, encoded_words(self.subject)
        try:
            msg = super().message()
        finally:
            self.subject = subject
        if settings.DKIM_SELECTOR and settings.DKIM_PRIVATE_KEY_FILE:  # serialising costs ~2 ms
            signature = dkim_signature(msg.as_bytes(linesep="\r\n"))
            if signature:
                msg["DKIM-Signature"] = signature
        return msg


def build_message(
    rendered: RenderedEmail,
    *,
    to: str,
    unsubscribe_url: str | None = None,
    list_id: str | None = None,
    message_id: str | None = None,
    connection=None,
) -> EmailMultiAlternatives:
    """A multipart text + HTML message with our headers.

    ``unsubscribe_url`` adds ``List-Unsubscribe`` (URL, plus mailto when
    configured) and ``List-Unsubscribe-Post`` for RFC 8058 one-click.
    """
    headers = {"Message-ID": message_id or new_message_id()}
    if unsubscribe_url:
        targets = [f"<{_single_line(unsubscribe_url)}>"]
        if settings.UNSUBSCRIBE_MAILTO:
            targets.append(f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe>")
        headers["List-Unsubscribe"] = ", ".join(targets)
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if list_id:
        headers["List-Id"] = _single_line(list_id)
    message = SignedEmailMessage(
        subject=_single_line(rendered.subject),
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[_single_line(to)],
        headers=headers,
        connection=connection,
    )
    message.attach_alternative(rendered.html, "text/html")
    return message
