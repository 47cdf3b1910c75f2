"""Building messages: a multipart text + HTML message with our headers, as bytes for SMTP.

When ``DKIM_SELECTOR`` and ``DKIM_PRIVATE_KEY_FILE`` are set, every message built here
is DKIM-signed (dkimpy) over the final bytes, covering the ``List-Unsubscribe``
headers, so a receiver can trust the one-click unsubscribe target.
"""

from __future__ import annotations

import functools
import secrets
from email import quoprimime
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

import dkim
from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from emails.rendering import RenderedEmail


def _single_line(value: str) -> str:
    """Header values never carry a line break (no header injection)."""
    return " ".join(str(value).split())


def encoded_words(value: str) -> str:
    """A header value as RFC 2047 "Q" encoded words (plain ASCII stays as it is).

    ``email.header.Header`` does the same but sizes its chunks by re-measuring growing
    prefixes, slowly (bench/README.md, "Costs behind the code"). Here each word is filled character by
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
        # The email package folds a header whose first word is too long before that word
        # (List-Unsubscribe's URL), and some parsers then read a leading space; lines up to
        # RFC 5322's 998 characters never fold so (the subject is encoded words already).
        msg.policy = msg.policy.clone(max_line_length=_MAX_LINE)
        if settings.DKIM_SELECTOR and settings.DKIM_PRIVATE_KEY_FILE:  # serialising is not free: only to sign
            signature = dkim_signature(msg.as_bytes(linesep="\r\n"))
            if signature:
                msg["DKIM-Signature"] = signature
        return msg

    def wire_bytes(self) -> bytes:
        """The message as it goes over SMTP (CRLF line ends, DKIM-signed when configured).

        A digest is always the same shape: ASCII headers, a text and an HTML part in
        UTF-8, 8bit, lines under 998 characters. That shape is written directly here;
        the email package's generator refolds every header through its policy, twenty
        times slower (bench/README.md). Any other message (an attachment,
        a non-ASCII address, a line too long for 8bit) goes through the email package.
        """
        data = _simple_wire_bytes(self)
        if data is None:
            return self.message().as_bytes(linesep="\r\n")
        signature = dkim_signature(data) if settings.DKIM_SELECTOR and settings.DKIM_PRIVATE_KEY_FILE else None
        if signature:
            data = _fold("DKIM-Signature", signature).encode("ascii") + b"\r\n" + data
        return data


_FOLD_AT = 78  # RFC 5322: lines SHOULD stay within 78 characters, MUST within 998
_MAX_LINE = 998


def _fold(name: str, value: str) -> str | None:
    """``Name: value`` folded at spaces into lines of at most 78 characters where the words
    allow; None when a single word would make a line longer than 998."""
    bare = f"{name}:"
    lines = [bare]
    for word in value.split():
        # Never before the first word: a value that starts on a continuation line reads
        # with a leading space in some parsers (List-Unsubscribe's URL among them).
        if len(lines[-1]) + 1 + len(word) > _FOLD_AT and lines[-1] != bare:
            lines.append("")
        lines[-1] += " " + word
    if any(len(line) > _MAX_LINE for line in lines):
        return None
    return "\r\n".join(lines)


def _body_lines(text: str) -> str | None:
    """The text with CRLF line ends, or None if a line is too long for 8bit."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > _MAX_LINE and max(map(len, text.split("\n"))) > _MAX_LINE:
        return None
    return text.replace("\n", "\r\n")


def _phrase_encoded(value: str) -> str:
    """``Name <addr>`` with a non-ASCII name as encoded words (RFC 2047 5(3)), as the
    email package writes it; anything else as it is (the caller checks it is ASCII)."""
    if value.isascii():
        return value
    name, address = parseaddr(value)
    if not (name and address.isascii() and value.rstrip().endswith(f"<{address}>")):
        return value
    return f"{encoded_words(name)} <{address}>"


def _simple_wire_bytes(message: EmailMultiAlternatives) -> bytes | None:
    """A text + HTML message written directly, or None if it is not that simple shape."""
    encoding = (message.encoding or settings.DEFAULT_CHARSET).lower()
    if (
        encoding not in ("utf-8", "utf8")
        or message.attachments
        or message.cc
        or message.reply_to
        or message.content_subtype != "plain"
        or len(message.alternatives) != 1
        or message.alternatives[0][1] != "text/html"
    ):
        return None
    extra = {name.lower(): (name, str(value)) for name, value in message.extra_headers.items()}
    headers = [
        ("Subject", encoded_words(str(message.subject))),
        ("From", _phrase_encoded(extra.pop("from", ("From", message.from_email))[1])),
    ]
    to = extra.pop("to", ("To", ", ".join(map(str, message.to))))[1]
    if to:
        headers.append(("To", to))
    headers.append(("Date", extra.pop("date", ("Date", None))[1] or formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
    headers.append(("Message-ID", extra.pop("message-id", ("Message-ID", None))[1] or new_message_id()))
    headers.extend(extra.values())
    text, html = _body_lines(str(message.body)), _body_lines(str(message.alternatives[0][0]))
    if text is None or html is None:
        return None
    folded = []
    for name, value in headers:
        if not value.isascii() or "\n" in value or "\r" in value:
            return None  # an encoded address or a header the email package must check
        line = _fold(name, value)
        if line is None:
            return None
        folded.append(line)
    boundary = f"=_{secrets.token_hex(16)}"
    part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    return "".join(
        [
            "\r\n".join(folded),
            f'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n',
            f"--{boundary}\r\n",
            part.format("plain"),
            text,
            f"\r\n--{boundary}\r\n",
            part.format("html"),
            html,
            f"\r\n--{boundary}--\r\n",
        ]
    ).encode("utf-8")


def list_id_header(value: str) -> str:
    """``phrase <list.id>`` with only the phrase encoded (RFC 2919, RFC 2047 5(3)): an
    encoded word never swallows the ``<list-id>`` that filters match on."""
    phrase, bracket, rest = value.rpartition("<")
    if not bracket or value.isascii():
        return value
    return f"{encoded_words(phrase.strip())} <{rest}".strip()


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
        headers["List-Id"] = list_id_header(_single_line(list_id))
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
