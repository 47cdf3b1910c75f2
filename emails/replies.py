"""What an SMTP server's refusal means for the message and for the address.

A refusal is read together with the SMTP step it answered. Only the server's word about
one recipient (``RCPT TO`` refused with 550, 551 or 553 and an enhanced code that names
the mailbox: 5.1.1, 5.1.2, 5.1.10, 5.2.1) or a provider's bounce event may suppress an
address. A refusal at ``EHLO``, ``AUTH`` or ``MAIL FROM``, or any sender (5.1.7, 5.1.8)
or policy (5.7.x) code, is about us: suppressing the recipient would turn one
configuration mistake into a lost list.
"""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass

_USER_UNKNOWN = re.compile(
    r"user unknown|unknown user|no such user|does not exist|mailbox (?:unavailable|not found|disabled)|"
    r"invalid (?:recipient|mailbox)|recipient not found",
    re.IGNORECASE,
)
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# RFC 3463: bad destination mailbox (5.1.1), bad destination system (5.1.2), recipient
# address has null MX (5.1.10, RFC 7505), mailbox disabled (5.2.1).
_RECIPIENT_GONE = {"5.1.1", "5.1.2", "5.1.10", "5.2.1"}
_RECIPIENT_CODES = (550, 551, 553)


class Step:
    """The SMTP step a failure happened at."""

    CONNECT = "connect"
    EHLO = "ehlo"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the DATA command, or the answer to the message's final dot
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A failed attempt as the server (or the network) put it."""

    code: int | None
    text: str
    step: str

    @property
    def enhanced(self) -> str:
        """The RFC 3463 status code in the text ("5.1.1"), or ""."""
        match = _ENHANCED.search(self.text or "")
        return ".".join(match.groups()) if match else ""

    @property
    def transient(self) -> bool:
        return is_transient(self.code)

    @property
    def key(self) -> str:
        """What makes two failures "the same": the reply code and its enhanced code."""
        return f"{self.code or ''} {self.enhanced}".strip()

    @property
    def recipient_gone(self) -> bool:
        """The server said this recipient cannot receive mail, and only that: suppress it."""
        return self.step == Step.RCPT and recipient_gone(self.code, self.text)

    def describe(self) -> str:
        """The error as stored on a delivery row: the reply as the server sent it, then the step."""
        return f"{self.code or ''} {self.text} (at {self.step})".strip()[:1000]


def refusal_of(exc: BaseException) -> Refusal:
    """The reply code, text and SMTP step behind an exception from ``emails.smtp`` or smtplib."""
    code, text = smtp_failure(exc)
    return Refusal(code, text, _step_of(exc))


def _step_of(exc: BaseException) -> str:
    step = getattr(exc, "smtp_step", None)  # set by emails.smtp where the exception type is ambiguous
    if step:
        return step
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return Step.RCPT
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return Step.MAIL
    if isinstance(exc, smtplib.SMTPHeloError):
        return Step.EHLO
    if isinstance(exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError)):
        return Step.AUTH
    if isinstance(exc, smtplib.SMTPDataError):
        return Step.DATA
    if isinstance(exc, (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected, OSError)):
        return Step.CONNECT
    return Step.UNKNOWN


def smtp_failure(exc: BaseException) -> tuple[int | None, str]:
    """The SMTP reply code and text behind an exception (None for connection trouble)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return code, text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        return exc.smtp_code, text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return None, str(exc) or type(exc).__name__


def is_transient(code: int | None) -> bool:
    return code is None or 400 <= code < 500


def recipient_gone(code: int | None, text: str) -> bool:
    """An answer to ``RCPT TO`` that says this mailbox cannot receive mail.

    With an enhanced status code only 5.1.1, 5.1.2, 5.1.10 and 5.2.1 count; without one
    (old servers) only a reply that says so in words ("No such user").
    """
    if code not in _RECIPIENT_CODES:
        return False
    enhanced = _ENHANCED.search(text or "")
    if enhanced:
        return ".".join(enhanced.groups()) in _RECIPIENT_GONE
    return bool(_USER_UNKNOWN.search(text or ""))
