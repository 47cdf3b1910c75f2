"""emails.messages: the headers as receivers and their filters read them."""

import email
from email import policy

import emails
from emails.messages import list_id_header

PLAIN = emails.RenderedEmail(subject="Hello", text="hi\n", html="<p>hi</p>")


def _parsed(message) -> email.message.EmailMessage:
    return email.message_from_bytes(message.wire_bytes(), policy=policy.default)


def test_a_non_ascii_list_name_encodes_only_the_phrase_and_keeps_the_list_id_readable():
    header = list_id_header("Zeitschriftenschau für Forscher weekly digest <weekly.digest.example.org>")
    assert header.endswith(" <weekly.digest.example.org>") and header.isascii()
    message = emails.build_message(
        PLAIN, to="r@example.org", list_id="Zeitschriftenschau für Forscher weekly digest <weekly.digest.example.org>"
    )
    parsed = _parsed(message)
    assert not parsed.defects
    assert str(parsed["List-Id"]) == "Zeitschriftenschau für Forscher weekly digest <weekly.digest.example.org>"
    raw = message.wire_bytes().split(b"\r\n\r\n", 1)[0].decode()
    assert "<weekly.digest.example.org>" in raw  # filters match the raw header: never inside an encoded word


def test_list_unsubscribe_starts_on_its_own_line_even_when_its_url_is_long():
    url = "https://example.org/unsubscribe/" + "x" * 120 + "/"
    message = emails.build_message(PLAIN, to="r@example.org", unsubscribe_url=url)
    raw = message.wire_bytes().split(b"\r\n\r\n", 1)[0]
    assert f"List-Unsubscribe: <{url}>".encode() in raw.split(b"\r\n")
    assert _parsed(message)["List-Unsubscribe"] == f"<{url}>"


def test_the_dkim_domain_defaults_to_the_from_domain(settings):
    from email.utils import parseaddr

    assert parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] == settings.DKIM_DOMAIN


def test_list_unsubscribe_is_not_folded_before_its_url_in_messages_the_email_package_writes():
    url = "https://example.org/unsubscribe/" + "x" * 120 + "/"
    message = emails.build_message(PLAIN, to="Zoë Reader <zoe@example.org>", unsubscribe_url=url)
    assert f"List-Unsubscribe: <{url}>".encode() in message.wire_bytes().split(b"\r\n")
    assert _parsed(message)["To"] == "Zoë Reader <zoe@example.org>"


def test_a_non_ascii_sender_name_keeps_the_message_on_the_direct_path(settings):
    settings.DEFAULT_FROM_EMAIL = "Zeitschriftenschau für Forscher <digest@example.org>"
    message = emails.build_message(PLAIN, to="r@example.org")
    raw = message.wire_bytes()
    sender = b"From: =?utf-8?q?Zeitschriftenschau_f=C3=BCr_Forscher?= <digest@example.org>"
    assert raw.startswith(b"Subject: Hello\r\n" + sender)
    parsed = _parsed(message)
    assert parsed["From"].addresses[0].display_name == "Zeitschriftenschau für Forscher" and not parsed.defects
