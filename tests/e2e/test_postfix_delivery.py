"""Digests through a real MTA: a private Postfix (3.7, Debian's package) on 127.0.0.1
with strict client settings, delivering into Maildirs, and DKIM checked by an
independent verifier (Perl's Mail::DKIM, with the public key given locally: no DNS).

``send_digests --now`` runs in this process with in-process tasks, as the embedded
default does; the test reads what Postfix wrote into the Maildirs.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import threading
import time
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from devtools.postfix import PrivatePostfix
from digests import breaker, content, tasks
from digests.models import Delivery, Issue
from subscriptions.models import Subscriber
from tests.certificates import self_signed_certificate
from tests.digests.helpers import TOPIC_PAPERS, make_papers, make_subscriber

pytestmark = [pytest.mark.postfix, pytest.mark.django_db(transaction=True)]

TOPICS = list(TOPIC_PAPERS)
SENDER_NAME = "Zeitschriftenschau für Forscher"
DKIM_RECORD_NAME = "sel._domainkey.digest.test"

VERIFY_PL = r"""
use strict; use warnings;
use Mail::DKIM::Verifier; use Net::DNS::RR;
my ($name, $record, @files) = @ARGV;
{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($domain, $type) = @_;
        return () unless lc($domain) eq lc($name) && $type eq 'TXT';
        return (Net::DNS::RR->new(type => 'TXT', name => $name, txtdata => $record));
    };
}
for my $file (@files) {
    my $dkim = Mail::DKIM::Verifier->new();
    open(my $fh, '<', $file) or die "$file: $!";
    binmode $fh;
    while (my $line = <$fh>) { $line =~ s/\r?\n\z//; $dkim->PRINT("$line\015\012"); }
    close $fh;
    $dkim->CLOSE;
    print "$file\t" . $dkim->result_detail . "\n";
}
"""


@pytest.fixture
def postfix():
    server = PrivatePostfix(domain="example.org", hostname="mx.postfix.test")
    yield server
    server.destroy()


@pytest.fixture
def dkim_key(tmp_path):
    """A key pair made here; the TXT record a receiver would find in DNS."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test's DKIM key"
    key = tmp_path / "dkim.pem"
    subprocess.run([openssl, "genrsa", "-out", str(key), "1024"], check=True, capture_output=True)
    der = subprocess.run(
        [openssl, "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return key, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


@pytest.fixture
def mail_through(settings, postfix, dkim_key):
    """Settings for sending through the private Postfix, DKIM-signed for digest.test."""
    settings.EMAIL_BACKEND = "emails.smtp.SmtpBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", postfix.port, 10
    settings.EMAIL_DATA_END_TIMEOUT = 120  # a test that would wait longer has failed anyway
    settings.EMAIL_EHLO_NAME = "mail.digest.test"
    settings.MAIL_DOMAIN = "digest.test"
    settings.SENDER_NAME = SENDER_NAME
    settings.DEFAULT_FROM_EMAIL = f"{SENDER_NAME} <digest@digest.test>"
    settings.DKIM_SELECTOR, settings.DKIM_DOMAIN = "sel", "digest.test"
    settings.DKIM_PRIVATE_KEY_FILE = str(dkim_key[0])
    settings.DIGEST_RETRY_BASE_SECONDS = 0.5
    settings.DIGEST_MAX_RETRY_DELAY_SECONDS = 2
    settings.SEND_RATE_PER_SECOND = 200
    return settings


def _readers(count: int, prefix: str = "reader") -> list[str]:
    make_papers()
    addresses = [f"{prefix}{n}@example.org" for n in range(count)]
    for n, address in enumerate(addresses):
        make_subscriber(address, topics=[TOPICS[n % len(TOPICS)]])
    return addresses


def _sessions(postfix: PrivatePostfix) -> list[int]:
    """Messages per SMTP session, from Postfix's log ("disconnect ... data=N")."""
    log = postfix.log.read_text(errors="replace")
    return [int(n) for n in re.findall(r"disconnect from \S+ ehlo=\d+.*? data=(\d+)", log)]


def _verify_dkim(files, record: str) -> list[str]:
    perl = shutil.which("perl")
    assert perl, "perl is needed for the independent DKIM verifier"
    done = subprocess.run(
        [perl, "-e", VERIFY_PL, DKIM_RECORD_NAME, record, *map(str, files)], capture_output=True, text=True, check=True
    )
    return [line.split("\t", 1)[1] for line in done.stdout.splitlines()]


def test_an_issue_reaches_every_reader_exactly_once_through_postfix_even_when_it_restarts_mid_send(
    mail_through, postfix, dkim_key, tmp_path, lost_answers
):
    addresses = _readers(300)
    postfix.set_mailboxes(addresses)
    postfix.start()

    restarted = threading.Event()

    def restart_mid_send():
        deadline = time.monotonic() + 120
        while postfix.delivered_count() < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        postfix.stop()  # connections drop mid-send; the queue stays on disk
        time.sleep(3)
        postfix.start()
        restarted.set()

    restarter = threading.Thread(target=restart_mid_send)
    restarter.start()
    started = time.monotonic()
    call_command("send_digests", "--now")  # raises CommandError if any row stayed undelivered
    print(f"300 digests through Postfix, restarted mid-send, in {time.monotonic() - started:.1f}s")
    restarter.join()
    assert restarted.is_set()
    postfix.wait_until_delivered(300)

    # Exactly once, but for the two windows no SMTP client can close (bench/README.md,
    # "Exactly once through a Postfix restart"): a message Postfix queued as it was stopped,
    # before its 250 reached us (RFC 1047: we send it again, once, and say so), and one its
    # delivery agent wrote to the Maildir as it was stopped, before Postfix noted it (Postfix
    # delivers it again: the same queue ID twice). Anything else is a copy too many.
    files = postfix.delivered_files()
    assert all(files.values()), [a for a, found in files.items() if not found]
    resends, redeliveries, unexplained = _extra_copies(
        postfix, lost_answers(), [a for a, f in files.items() if len(f) > 1]
    )
    print(
        f"extra copies: {resends} sent again after a lost answer (RFC 1047), {redeliveries} delivered again by Postfix"
    )
    assert not unexplained, "delivered more than once:\n" + "\n".join(
        [*(_row_report(a) + "\n" + postfix.copies_report(a) for a in unexplained), postfix.log_tail(3000)]
    )
    messages = {address: found[0] for address, found in postfix.messages().items()}
    ids = Counter(m["Message-ID"] for m in messages.values())
    assert len(ids) == 300 and max(ids.values()) == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert "daemon started" in postfix.log_tail(10_000) and postfix.log.read_text().count("daemon started") == 2

    # Headers as receivers and list filters read them.
    list_id = content.list_id("weekly")
    for address, message in messages.items():
        assert not message.defects and not any(part.defects for part in message.walk()), address
        assert str(message["List-Id"]) == list_id
        assert str(message["List-Unsubscribe"]).startswith("<http")
        assert message["From"].addresses[0].addr_spec == "digest@digest.test"
        assert message["From"].addresses[0].display_name == SENDER_NAME
    raw = files[addresses[0]][0].read_bytes()
    assert b"<weekly.digest.digest.test>" in raw  # List-Id's id is never inside an encoded word
    assert re.search(rb"\r?\nList-Unsubscribe: <http", raw)  # the value starts on the header's line
    assert b"Received: from mail.digest.test (" in raw  # our EHLO name, not "localhost"

    # DKIM verified by Mail::DKIM; a tampered unsubscribe URL fails.
    sample = [files[a][0] for a in addresses[:25]]
    assert _verify_dkim(sample, dkim_key[1]) == ["pass"] * 25
    tampered = tmp_path / "tampered.eml"
    tampered.write_bytes(re.sub(rb"(List-Unsubscribe: <http[^>]*?/unsubscribe/)", rb"\1x", raw, count=1))
    assert tampered.read_bytes() != raw
    assert _verify_dkim([tampered], dkim_key[1])[0].startswith("fail")

    # A second --now sends nothing.
    delivered = postfix.delivered_count()
    call_command("send_digests", "--now")
    time.sleep(1)
    assert postfix.delivered_count() == delivered == 300 + resends + redeliveries and postfix.queue_is_empty()

    # Connections carry many messages each (an issue's rows are batched together). Sessions
    # cut by the restart leave no "disconnect" line, so only the whole ones are counted.
    sessions = [n for n in _sessions(postfix) if n]
    print(f"whole SMTP sessions: {len(sessions)}, messages in each: {sorted(sessions)}")
    assert len(sessions) <= 40 and max(sessions) >= 20, sessions
    log = postfix.log.read_text(errors="replace")
    assert "improper command pipelining" not in log and "bare <LF>" not in log  # the strict settings saw nothing


def test_a_postfix_slower_to_answer_a_final_dot_than_the_socket_timeout_still_gets_each_message_once(
    mail_through, postfix, settings, monkeypatch, caplog
):
    """RFC 5321 4.5.3.2.6: the answer to a final dot may take minutes (the server is queueing
    the message). Postfix's smtpd processes are stopped (SIGSTOP) right before a group's dots
    for longer than EMAIL_TIMEOUT, then go on: they queue what they read. A client that gave
    up after EMAIL_TIMEOUT sent those messages again, and both copies arrived."""
    from emails import smtp

    settings.EMAIL_TIMEOUT = 2
    settings.EMAIL_DATA_END_TIMEOUT = 60
    addresses = _readers(40)
    postfix.set_mailboxes(addresses)
    postfix.start()
    real_dot, dots, frozen = smtp.send_final_dot, [], []

    def dot(session):
        dots.append(session)
        if len(dots) == 9:  # the third group's first dot: its four connections wait on frozen smtpds
            frozen.extend(postfix.freeze_smtpd(seconds=5))
        real_dot(session)

    monkeypatch.setattr(smtp, "send_final_dot", dot)
    call_command("send_digests", "--now")
    postfix.wait_until_delivered(40)
    assert len(frozen) >= 4  # every connection of the group was waiting on a frozen smtpd
    files = postfix.delivered_files()
    twice = [address for address, found in files.items() if len(found) > 1]
    assert not twice, "\n".join(postfix.copies_report(a) for a in twice)
    assert {a: len(f) for a, f in files.items()} == dict.fromkeys(addresses, 1)
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Delivery.Status.SENT, 1)}
    assert not [r for r in caplog.records if r.getMessage().startswith("no answer to a final dot")]


def test_a_sender_postfix_refuses_suppresses_nobody_and_pauses_the_issue_until_resumed(mail_through, postfix, settings):
    settings.DIGEST_BREAKER_CONSECUTIVE = 20
    addresses = _readers(40)
    postfix.set_mailboxes(addresses[:-1])  # the last reader's mailbox does not exist
    postfix.start()
    settings.DEFAULT_FROM_EMAIL = "Paper Digest <digest@127.0.0.1>"  # refused: 501 5.1.7 Bad sender address syntax

    with pytest.raises(CommandError, match="remain undelivered"):
        call_command("send_digests", "--now")
    assert Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE).count() == 0
    issue = Issue.objects.get()
    assert issue.paused_at is not None and "501 5.1.7" in issue.pause_reason
    assert Delivery.objects.filter(status=Delivery.Status.FAILED).count() == 20
    assert postfix.delivered_count() == 0

    settings.DEFAULT_FROM_EMAIL = "Paper Digest <digest@digest.test>"  # the operator fixes the sender
    assert breaker.resume(issue, enqueue=tasks.enqueue_deliveries) == 40
    postfix.wait_until_delivered(39)
    assert {a: len(f) for a, f in postfix.delivered_files().items()} == dict.fromkeys(addresses[:-1], 1)
    # Only the recipient Postfix does not know (550 5.1.1 at RCPT TO) is suppressed.
    bounced = Subscriber.objects.filter(status=Subscriber.Status.BOUNCED)
    assert list(bounced.values_list("email", flat=True)) == [addresses[-1]]
    assert "550 5.1.1" in bounced.get().suppression_reason
    assert Issue.objects.get().paused_at is None


def test_starttls_to_postfix_with_a_self_signed_certificate_trusts_only_email_ssl_cafile(settings, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    server = PrivatePostfix(domain="example.org", tls=(cert, key))
    try:
        addresses = _readers(5)
        server.set_mailboxes(addresses)
        server.start()
        settings.EMAIL_BACKEND, settings.EMAIL_USE_TLS = "emails.smtp.SmtpBackend", True
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 10
        settings.DEFAULT_FROM_EMAIL = "Paper Digest <digest@digest.test>"
        settings.EMAIL_SSL_CAFILE = str(cert)
        call_command("send_digests", "--now")
        server.wait_until_delivered(5)
        assert {a: len(f) for a, f in server.delivered_files().items()} == dict.fromkeys(addresses, 1)
        received = server.messages()[addresses[0]][0]["Received"]
        assert "ESMTPS" in received  # the message came over TLS
    finally:
        server.destroy()


@pytest.fixture
def lost_answers(caplog):
    """Per recipient, the errors of the final dots whose answer never came (``digests.sending``)."""

    def collect() -> dict[str, list[str]]:
        lost = [r for r in caplog.records if r.getMessage().startswith("no answer to a final dot")]
        emails = dict(Delivery.objects.filter(id__in={r.delivery for r in lost}).values_list("id", "subscriber__email"))
        out: dict[str, list[str]] = {}
        for record in lost:  # a row can lose the answer to each of its attempts
            out.setdefault(emails[record.delivery], []).append(record.error)
        return out

    return collect


def _extra_copies(postfix: PrivatePostfix, lost: dict[str, list[str]], twice: list[str]):
    """Sorts the copies beyond the first: sent again by us after a final dot whose answer was
    lost with the connection (a new queue ID), delivered again by Postfix (a queue ID seen
    before), or unexplained (a resend with no lost answer, or after waiting too little)."""
    resends = redeliveries = 0
    unexplained = []
    for address in twice:
        queue_ids = [copy["queue_id"] for copy in postfix.copies(address)]
        ours = len(set(queue_ids)) - 1
        dropped = [e for e in lost.get(address, []) if "timed out" not in e]  # a timeout is not RFC 1047
        if ours > len(dropped):
            unexplained.append(address)
        resends += ours
        redeliveries += len(queue_ids) - len(set(queue_ids))
    return resends, redeliveries, unexplained


def _row_report(address: str) -> str:
    row = Delivery.objects.get(subscriber__email=address)
    return f"{address}: row {row.id} {row.status}, attempts {row.attempts}, last error {row.last_error!r}"
