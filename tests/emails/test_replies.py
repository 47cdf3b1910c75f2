"""What an SMTP server's refusal means for the message and the address."""

import datetime as dt
import smtplib

import pytest

from digests.models import Delivery
from emails import replies

Status = Delivery.Status
UTC = dt.UTC
MONDAY_0900_UTC = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "text", "user_unknown"),
    [
        (550, "5.1.1 No such user", True),
        (550, "Requested action not taken: mailbox unavailable", True),
        (553, "5.1.3 Bad recipient address syntax", True),
        (552, "5.2.1 Mailbox disabled", True),
        (554, "5.7.1 Rejected by policy", False),
        (550, "Message rejected as spam", False),
        (552, "5.3.4 Message too big", False),
        (451, "4.1.1 Temporary lookup failure", False),
    ],
)
def test_user_unknown_classification(code, text, user_unknown):
    assert replies.is_user_unknown(code, text) is user_unknown


def test_exceptions_map_to_codes():
    refused = smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"5.1.1 unknown")})
    assert replies.smtp_failure(refused) == (550, "5.1.1 unknown")
    assert replies.smtp_failure(smtplib.SMTPDataError(451, b"later")) == (451, "later")
    assert replies.smtp_failure(TimeoutError("timed out"))[0] is None
    assert replies.is_transient(None) and replies.is_transient(421) and not replies.is_transient(550)
