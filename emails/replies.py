"""What an SMTP server's refusal means for the message and for the address."""

from __future__ import annotations

import re
import smtplib

_USER_UNKNOWN = re.compile(
    r"user unknown|unknown user|no such user|does not exist|mailbox (?:unavailable|not found|disabled)|"
    r"invalid (?:recipient|mailbox|address)|recipient (?:rejected|not found)|address rejected",
    re.IGNORECASE,
)
_POLICY = re.compile(r"spam|policy|blocked|block list|blacklist|reputation|rate", re.IGNORECASE)
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


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


def is_user_unknown(code: int | None, text: str) -> bool:
    """A permanent answer that says this address cannot receive mail (suppress it)."""
    if code is None or not 500 <= code < 600:
        return False
    enhanced = _ENHANCED.search(text or "")
    if enhanced:
        cls, subject, detail = enhanced.groups()
        return cls == "5" and (subject == "1" or (subject, detail) == ("2", "1"))
    return bool(_USER_UNKNOWN.search(text or "")) or (code in (550, 551, 553) and not _POLICY.search(text or ""))
