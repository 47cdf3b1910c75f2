"""What an SMTP server's refusal means for the message and the address."""

import smtplib

import pytest

from emails import replies
from emails.replies import Step


@pytest.mark.parametrize(
    ("code", "text", "gone"),
    [
        (550, "5.1.1 No such user", True),
        (550, "5.1.1 <a@example.org>: Recipient address rejected: User unknown in virtual mailbox table", True),
        (551, "5.1.2 Bad destination system", True),
        (550, "5.1.10 Recipient address has null MX", True),
        (550, "5.2.1 Mailbox disabled", True),
        (550, "Requested action not taken: mailbox unavailable", True),  # no enhanced code: the words say it
        (553, "5.1.3 Bad recipient address syntax", False),  # maybe our encoding, not their mailbox
        (552, "5.2.1 Mailbox disabled", False),  # 552 is not a recipient reply code
        (501, "5.1.7 Bad sender address syntax", False),
        (550, "5.1.8 Sender address rejected: Domain not found", False),
        (554, "5.7.1 Relay access denied", False),
        (550, "Message rejected as spam", False),
        (550, "5.7.1 Rejected by policy: user unknown to the list", False),  # the enhanced code decides
        (451, "4.1.1 Temporary lookup failure", False),
    ],
)
def test_only_a_recipient_specific_permanent_answer_says_the_mailbox_is_gone(code, text, gone):
    assert replies.recipient_gone(code, text) is gone


@pytest.mark.parametrize(
    ("exc", "step", "suppresses"),
    [
        (smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"5.1.1 No such user")}), Step.RCPT, True),
        (smtplib.SMTPSenderRefused(550, b"5.1.1 No such user", "digest@example.org"), Step.MAIL, False),
        (smtplib.SMTPSenderRefused(501, b"5.1.7 Bad sender address syntax", "digest@127.0.0.1"), Step.MAIL, False),
        (smtplib.SMTPHeloError(550, b"5.1.1 Helo command rejected"), Step.EHLO, False),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication failed"), Step.AUTH, False),
        (smtplib.SMTPDataError(550, b"5.1.1 No such user"), Step.DATA, False),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), Step.CONNECT, False),
        (ConnectionRefusedError(111, "Connection refused"), Step.CONNECT, False),
    ],
)
def test_the_step_of_a_refusal_decides_whether_it_suppresses(exc, step, suppresses):
    refusal = replies.refusal_of(exc)
    assert refusal.step == step
    assert refusal.recipient_gone is suppresses


def test_a_refusal_is_stored_with_its_step_and_compared_by_its_codes():
    refusal = replies.refusal_of(smtplib.SMTPSenderRefused(501, b"5.1.7 Bad sender address syntax", "d@127.0.0.1"))
    assert refusal.describe() == "501 5.1.7 Bad sender address syntax (at mail)"
    assert refusal.key == "501 5.1.7" and not refusal.transient


def test_exceptions_map_to_codes():
    refused = smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"5.1.1 unknown")})
    assert replies.smtp_failure(refused) == (550, "5.1.1 unknown")
    assert replies.smtp_failure(smtplib.SMTPDataError(451, b"later")) == (451, "later")
    assert replies.smtp_failure(TimeoutError("timed out"))[0] is None
    assert replies.is_transient(None) and replies.is_transient(421) and not replies.is_transient(550)
