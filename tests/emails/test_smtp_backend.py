"""emails.smtp.SmtpBackend and the MAIL FROM parameters, against a real SMTP server."""

import ssl

import pytest
from django.core import checks
from django.core.mail import get_connection

import emails
from devtools.smtp_sink import SmtpSink
from emails import smtp
from emails.checks import check_mail_settings, sender_problem
from tests.certificates import self_signed_certificate

PLAIN = emails.RenderedEmail(subject="Hello", text="hi\n", html="<p>hi</p>")
EIGHT_BIT = emails.RenderedEmail(subject="Grüße", text="Schrödinger\n", html="<p>Schrödinger</p>")


def _send(connection, rendered, to="r@example.org"):
    message = emails.build_message(rendered, to=to, connection=connection)
    session = smtp.session_of(connection, reopen=True)
    smtp.begin(session, *smtp.envelope(message), message.wire_bytes())
    smtp.send_final_dot(session)
    smtp.read_answer(session)


def _backend(sink, **kwargs):
    return get_connection("emails.smtp.SmtpBackend", host="127.0.0.1", port=sink.port, timeout=5, **kwargs)


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def utf8_sink():
    server = SmtpSink(pipelining=True, enable_SMTPUTF8=True).start()
    yield server
    server.stop()


def test_8bit_bodies_say_body_8bitmime_and_smtputf8_only_when_an_address_needs_it(utf8_sink, settings):
    connection = _backend(utf8_sink)
    _send(connection, PLAIN)
    _send(connection, EIGHT_BIT)
    _send(connection, EIGHT_BIT, to="Zoë <zoe@example.org>")
    # Django's envelope encodes a non-ASCII address; one given as it is needs SMTPUTF8.
    session = smtp.session_of(connection)
    smtp.begin(session, "digest@example.org", ["zoë@example.org"], b"Subject: hi\r\n\r\nhi\r\n")
    smtp.send_final_dot(session)
    smtp.read_answer(session)
    connection.close()
    assert utf8_sink.mail_options == [[], ["BODY=8BITMIME"], ["BODY=8BITMIME"], ["SMTPUTF8"]]
    assert list(utf8_sink.by_recipient())[-1] == "zoë@example.org"


def test_the_client_introduces_itself_with_the_ehlo_name(sink, settings):
    settings.EMAIL_EHLO_NAME = "mail.digest.example.org"
    connection = _backend(sink)
    _send(connection, PLAIN)
    connection.close()
    assert sink.ehlo_names == ["mail.digest.example.org"]


@pytest.fixture
def private_ca_sink(tmp_path):
    """An SMTP server offering STARTTLS with a certificate no public CA signed."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = SmtpSink(tls_context=context, require_starttls=True).start()
    server.cert = cert
    yield server
    server.stop()


def test_starttls_to_a_server_a_private_ca_signed_needs_only_email_ssl_cafile(private_ca_sink, settings):
    with pytest.raises(ssl.SSLCertVerificationError):
        _backend(private_ca_sink, use_tls=True).open()
    settings.EMAIL_SSL_CAFILE = str(private_ca_sink.cert)
    connection = _backend(private_ca_sink, use_tls=True)
    _send(connection, PLAIN)
    connection.close()
    assert list(private_ca_sink.by_recipient()) == ["r@example.org"]
    assert ssl.get_default_verify_paths().cafile != str(private_ca_sink.cert)  # the process's trust is untouched


@pytest.mark.parametrize(
    ("sender", "valid"),
    [
        ("Paper Digest <digest@example.org>", True),
        ("digest@example.org", True),
        ("digest@localhost", True),
        ("digest@[127.0.0.1]", True),
        ("Zoë <digest@exämple.org>", True),
        ("Paper Digest <digest@127.0.0.1>", False),
        ("digest@", False),
        ("digest", False),
        ("digest@exa mple.org", False),
        ("digest@example.123", False),
    ],
)
def test_a_sender_no_mail_server_accepts_is_a_configuration_error(sender, valid, settings):
    assert (sender_problem(sender) is None) is valid
    settings.DEFAULT_FROM_EMAIL = settings.SERVER_EMAIL = sender
    errors = check_mail_settings()
    assert (errors == []) is valid
    if not valid:
        assert errors[0].level == checks.ERROR and errors[0].id == "emails.E001"
        assert "DEFAULT_FROM_EMAIL" in errors[0].msg


def test_the_default_sender_on_an_ip_address_site_is_valid(monkeypatch):
    import importlib

    import digestsite.settings as site_settings

    monkeypatch.setenv("SITE_URL", "http://127.0.0.1:8000")
    monkeypatch.delenv("DEFAULT_FROM_EMAIL", raising=False)
    monkeypatch.delenv("MAIL_DOMAIN", raising=False)
    try:
        reloaded = importlib.reload(site_settings)
        assert reloaded.DEFAULT_FROM_EMAIL == "Paper Digest <digest@localhost>"
        assert sender_problem(reloaded.DEFAULT_FROM_EMAIL) is None
    finally:
        monkeypatch.undo()
        importlib.reload(site_settings)


def test_manage_py_check_fails_on_an_invalid_sender(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.DEFAULT_FROM_EMAIL = "digest@127.0.0.1"
    with pytest.raises(SystemCheckError, match="emails.E001"):
        call_command("check")


def test_a_missing_ca_file_is_a_configuration_error(settings, tmp_path):
    settings.EMAIL_SSL_CAFILE = str(tmp_path / "missing.pem")
    assert [e.id for e in check_mail_settings()] == ["emails.E002"]
