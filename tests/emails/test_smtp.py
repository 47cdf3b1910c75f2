"""emails.smtp: the envelope of a message, as Django's SMTP backend would make it."""

import re
import smtplib

import pytest
from django.core.mail import EmailMessage
from django.core.mail.message import sanitize_address

from devtools.smtp_sink import SmtpSink
from emails import smtp


@pytest.mark.parametrize(
    "to",
    [
        "reader@example.org",
        "o'brien+digest@mail.example.org",
        "Zoë Reader <zoe@example.org>",
        "zoë@example.org",
        "reader@exämple.org",
        '"quoted local"@example.org',
    ],
)
@pytest.mark.parametrize("sender", ["digest@example.org", "Paper Digest <digest@example.org>", "Zoë <z@example.org>"])
def test_the_envelope_is_what_django_would_send(sender, to):
    message = EmailMessage(subject="s", body="b", from_email=sender, to=[to])
    assert smtp.envelope(message) == (sanitize_address(sender, "utf-8"), [sanitize_address(to, "utf-8")])


def test_an_address_django_refuses_is_refused():
    message = EmailMessage(subject="s", body="b", from_email="digest@example.org", to=["not an address@@x"])
    with pytest.raises(ValueError):
        smtp.envelope(message)


@pytest.mark.parametrize(
    "data",
    [
        b"plain\r\nlines\r\n",
        b".leading dot\r\n",
        b"a\r\n.\r\nb\r\n",  # a lone dot would end the message
        b"a\r\n..two\r\n.\r\n",
        b"a\r.not a line start\r\n",
        b"",
        b".",
    ],
)
def test_dot_stuffing_is_smtplibs(data):
    # smtplib.SMTP.data stuffs with this substitution; a message's bytes must not change meaning.
    assert smtp.dot_stuffed(data) == re.sub(rb"(?m)^\.", b"..", data)


# ----------------------------------------------------------------------------- PIPELINING


@pytest.fixture(params=[True, False], ids=["pipelining", "step-by-step"])
def server(request):
    sink = SmtpSink(pipelining=request.param).start()
    yield sink
    sink.stop()


@pytest.fixture
def writes(monkeypatch):
    """Every write the client makes, in order."""
    sent: list[bytes] = []
    real = smtplib.SMTP.send

    def send(self, data):
        sent.append(data if isinstance(data, bytes) else data.encode())
        return real(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", send)
    return sent


def _message(to: str) -> bytes:
    return f"From: d@example.org\r\nTo: {to}\r\nSubject: hi\r\n\r\nhello {to}\r\n".encode()


def _deliver(session, to: str) -> None:
    smtp.begin(session, "d@example.org", [to], _message(to))
    smtp.send_final_dot(session)
    smtp.read_answer(session)


def test_with_pipelining_the_envelope_goes_in_one_write(server, writes):
    session = smtplib.SMTP("127.0.0.1", server.port, timeout=5)
    try:
        writes.clear()
        _deliver(session, "one@example.org")
        _deliver(session, "two@example.org")
    finally:
        session.quit()
    envelope_writes = [w for w in writes if w.lower().startswith((b"mail", b"rcpt", b"data"))]
    if server.pipelining:
        assert envelope_writes == [
            b"mail FROM:<d@example.org>\r\nrcpt TO:<one@example.org>\r\ndata\r\n",
            b"mail FROM:<d@example.org>\r\nrcpt TO:<two@example.org>\r\ndata\r\n",
        ]
    else:
        assert len(envelope_writes) == 6  # MAIL, RCPT and DATA, each on its own, twice
    assert [(to, data.replace(b"\r\n", b"\n")) for to, data in server.messages] == [
        (to, _message(to).replace(b"\r\n", b"\n")) for to in ("one@example.org", "two@example.org")
    ]


def test_a_refused_recipient_or_message_raises_and_the_session_stays_usable(server):
    server.script_rcpt("gone@example.org", "550 5.1.1 No such user")
    server.script("full@example.org", "452 4.2.2 Mailbox full")
    session = smtplib.SMTP("127.0.0.1", server.port, timeout=5)
    try:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.begin(session, "d@example.org", ["gone@example.org"], _message("gone@example.org"))
        assert refused.value.recipients == {"gone@example.org": (550, b"5.1.1 No such user")}
        smtp.begin(session, "d@example.org", ["full@example.org"], _message("full@example.org"))
        smtp.send_final_dot(session)
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            smtp.read_answer(session)
        assert deferred.value.smtp_code == 452
        _deliver(session, "fine@example.org")  # replies and commands are still in step
    finally:
        session.quit()
    assert [to for to, _ in server.messages] == ["fine@example.org"]
