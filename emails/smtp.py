"""One message over an open SMTP session in steps, so that a claim can sit between them.

``begin`` runs MAIL, RCPT and DATA and sends the whole message except the final
``<CRLF>.<CRLF>``. Until that dot arrives a server delivers nothing: a session that
drops inside DATA loses the unfinished message (RFC 5321, 4.1.1.4). ``send_final_dot``
writes the dot and ``read_answer`` reads the server's reply. ``services._hand_over``
writes the dots inside the transaction of the delivery rows' claims, right before its
commit (see there).

The calls are smtplib's own (``mail``, ``rcpt``, ``putcmd``, ``getreply``, ``send``);
errors are smtplib's exceptions, as ``sendmail`` raises them.
"""

from __future__ import annotations

import contextlib
import functools
import re
import smtplib
import socket
import ssl

from django.conf import settings
from django.core.mail.backends import smtp as django_smtp
from django.core.mail.message import sanitize_address
from django.utils.functional import cached_property

EmailBackend = django_smtp.EmailBackend


class SmtpBackend(django_smtp.EmailBackend):
    """Django's SMTP backend that introduces itself as ``EMAIL_EHLO_NAME`` (not the
    machine's name, often ``localhost``) and trusts ``EMAIL_SSL_CAFILE`` besides the
    system's CAs for STARTTLS and SSL, without touching the process's trust store."""

    @property
    def connection_class(self):
        base = super().connection_class
        ehlo_name = settings.EMAIL_EHLO_NAME

        def connect(host, port, **params):
            if ehlo_name:
                params["local_hostname"] = ehlo_name
            return base(host, port, **params)

        return connect

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        context = super().ssl_context
        if settings.EMAIL_SSL_CAFILE:
            context.load_verify_locations(cafile=settings.EMAIL_SSL_CAFILE)
        return context


def session_of(connection, *, reopen: bool = False) -> smtplib.SMTP | None:
    """The smtplib session behind Django's SMTP backend (``reopen``: opened again if it
    was dropped); None for any other backend (API, outbox, console, memory)."""
    if not isinstance(connection, EmailBackend):
        return None
    if connection.connection is None and reopen:
        connection.open()
    return connection.connection if isinstance(connection.connection, smtplib.SMTP) else None


def sibling(connection):
    """Another connection like ``connection`` (same backend and server), for sending
    several messages side by side; the connection itself for a non-SMTP backend."""
    if not isinstance(connection, EmailBackend):
        return connection
    return type(connection)(
        host=connection.host,
        port=connection.port,
        username=connection.username,
        password=connection.password,
        use_tls=connection.use_tls,
        use_ssl=connection.use_ssl,
        timeout=connection.timeout,
        ssl_keyfile=connection.ssl_keyfile,
        ssl_certfile=connection.ssl_certfile,
        fail_silently=connection.fail_silently,
    )


def envelope(message) -> tuple[str, list[str]]:
    """Envelope sender and recipients of a Django message, as Django's SMTP backend makes them."""
    encoding = message.encoding or "utf-8"
    return _sanitized(message.from_email, encoding), [_sanitized(a, encoding) for a in message.recipients()]


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def _sanitized(address: str, encoding: str) -> str:
    """``sanitize_address``, which parses every address; a plain ASCII ``local@domain``
    is already what it would return, so it is not parsed."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return _sanitized_named(address, encoding)


@functools.lru_cache(maxsize=64)
def _sanitized_named(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)  # the sender, mostly: the same for every message


def begin(session: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> None:
    """MAIL, RCPT, DATA, then the message without its final dot; raises as ``sendmail`` does.

    When the server offers PIPELINING (RFC 2920; Postfix, Exim and the big relays do),
    MAIL, RCPT and DATA go in one write and their replies are read together: one round
    trip instead of three before the message.
    """
    session.ehlo_or_helo_if_needed()
    _no_delay(session)
    options = mail_options(session, sender, recipients, data)
    if session.has_extn("pipelining"):
        _pipelined_envelope(session, sender, recipients, options)
    else:
        _envelope_step_by_step(session, sender, recipients, options)
    body = dot_stuffed(data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    session.send(body)


def mail_options(session: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> list[str]:
    """The MAIL FROM parameters: ``BODY=8BITMIME`` for a message with 8-bit bytes when the
    server offers it (RFC 6152), ``SMTPUTF8`` only for a non-ASCII address and only when
    offered (RFC 6531; without it such an address is refused, as smtplib would)."""
    options = []
    if not data.isascii() and session.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if not (sender.isascii() and all(r.isascii() for r in recipients)) and session.has_extn("smtputf8"):
        options.append("SMTPUTF8")
    return options


def dot_stuffed(data: bytes) -> bytes:
    """``data`` with a dot added to every line that starts with one (RFC 5321, 4.5.2), as
    smtplib's ``(?m)^\\.`` substitution does; ``bytes.replace`` scans a 30 KB digest
    about four times faster than that regex."""
    body = data.replace(b"\n.", b"\n..")
    return b"." + body if body.startswith(b".") else body


def _envelope_step_by_step(session: smtplib.SMTP, sender: str, recipients: list[str], options: list[str]) -> None:
    code, reply = session.mail(sender, options)
    if code != 250:
        _reset(session, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused = {}
    for recipient in recipients:
        code, reply = session.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    if len(refused) == len(recipients):  # a digest has one recipient: all or nothing
        _reset(session, code)
        raise smtplib.SMTPRecipientsRefused(refused)
    session.putcmd("data")
    code, reply = session.getreply()
    if code != 354:
        _reset(session, code)
        raise smtplib.SMTPDataError(code, reply)


def _pipelined_envelope(session: smtplib.SMTP, sender: str, recipients: list[str], options: list[str]) -> None:
    """MAIL, RCPT and DATA in one write; then every reply, in order, before deciding."""
    mail = " ".join([f"mail FROM:{smtplib.quoteaddr(sender)}", *options])
    session.command_encoding = "utf-8" if "SMTPUTF8" in options else "ascii"  # as smtplib's ``mail`` does
    commands = [mail, *(f"rcpt TO:{smtplib.quoteaddr(r)}" for r in recipients)]
    session.send("".join(f"{command}\r\n" for command in [*commands, "data"]))
    mail_code, mail_reply = session.getreply()
    answers = {recipient: session.getreply() for recipient in recipients}
    refused = {recipient: answer for recipient, answer in answers.items() if answer[0] not in (250, 251)}
    data_code, data_reply = session.getreply()
    failed = mail_code != 250 or len(refused) == len(recipients)
    if failed and data_code == 354:
        # The server opened DATA although nobody can receive it (RFC 2920 allows a
        # server to): end the empty message; with no recipient it delivers nothing.
        session.send(b".\r\n")
        data_code, data_reply = session.getreply()
    if failed or data_code != 354:
        codes = [mail_code, data_code, *(code for code, _ in answers.values())]
        _reset(session, 421 if 421 in codes else data_code)  # 421: the server is closing
    if mail_code != 250:
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    if failed:
        raise smtplib.SMTPRecipientsRefused(refused)
    if data_code != 354:
        raise smtplib.SMTPDataError(data_code, data_reply)


def send_final_dot(session: smtplib.SMTP) -> None:
    """Write the end of the message: from here on the server has it."""
    session.send(b".\r\n")


def read_answer(session: smtplib.SMTP, *, timeout: float | None = None) -> None:
    """The server's answer to the final dot: returns if it took the message, else raises.

    ``timeout``: how long to wait, instead of the session's own timeout. After the dot the
    server may be queueing the message (RFC 5321 4.5.3.2.6 gives it 10 minutes): giving up
    sooner sends again what it may already have (RFC 1047)."""
    sock = session.sock
    before = sock.gettimeout() if sock is not None else None
    if sock is not None and timeout is not None:
        sock.settimeout(timeout)
    try:
        code, reply = session.getreply()
    finally:
        if session.sock is not None:  # smtplib closes the session when the read fails
            session.sock.settimeout(before)
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


def unanswered(exc: BaseException) -> bool:
    """Whether a failure to read the answer to a final dot left the outcome unknown (the
    connection dropped or the wait ran out) rather than being a refusal."""
    return not isinstance(exc, smtplib.SMTPResponseException)


def abandon(connection) -> None:
    """Drop a session left inside DATA: the server discards the unfinished message.

    The backend opens a new session for the next message.
    """
    session = session_of(connection)
    if session is not None:
        session.close()
        connection.connection = None


def _no_delay(session: smtplib.SMTP) -> None:
    """Send small writes at once (TCP_NODELAY). The final dot is written on its own after
    the message; with Nagle's algorithm it would wait for the ACK of the message's last
    segment, which the server delays (up to 40 ms) because it has nothing to answer yet."""
    sock = session.sock
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reset(session: smtplib.SMTP, code: int) -> None:
    """After a refusal, as smtplib does: 421 means the server is closing; otherwise RSET."""
    if code == 421:
        session.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        session.rset()
