"""``send_digests`` and the thin tasks, run eagerly (no broker): logic, not the pipeline."""

import datetime as dt
import logging

import pytest
from django.core import mail
from django.core.management import call_command

from digests import delivery, tasks
from digests.models import Delivery, Issue
from tests.digests.helpers import make_papers, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)


def test_send_digests_now_sends_everyone_once(capsys, caplog):
    caplog.set_level(logging.DEBUG)  # every log call on the way must be valid
    make_papers()
    make_subscriber("w@example.org", topics=["protein folding"], weekday=(dt.date.today().weekday() + 3) % 7)
    make_subscriber("d@example.org", topics=["graph networks"], frequency="daily", send_hour=23)

    call_command("send_digests", "--now", "--frequency", "daily")
    assert "Deliveries created: 1" in capsys.readouterr().out
    assert [m.to for m in mail.outbox] == [["d@example.org"]]

    call_command("send_digests", "--now")
    assert "Deliveries created: 1" in capsys.readouterr().out
    call_command("send_digests", "--now")
    assert "Deliveries created: 0, re-enqueued: 0, enqueued: 0" in capsys.readouterr().out
    assert sorted(m.to[0] for m in mail.outbox) == ["d@example.org", "w@example.org"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    dispatched = [r for r in caplog.records if r.getMessage() == "digests dispatched"]
    assert [r.dispatch_created for r in dispatched] == [1, 1, 0]


def test_dispatch_task_is_the_beat_entry_point(settings):
    assert settings.CELERY_BEAT_SCHEDULE["dispatch-due-digests"]["task"] == tasks.dispatch_due.name
    make_papers()
    make_subscriber("w@example.org", topics=["protein folding"])
    result = tasks.dispatch_due.delay(force=True).get()
    assert result["created"] == 1 and len(mail.outbox) == 1


def test_deliver_task_leaves_transient_failures_queued_when_eager(monkeypatch):
    """A web request may be waiting on an eager task: no backoff there (send_digests has its own rounds)."""
    make_papers()
    row = Delivery.objects.create(
        issue=Issue.objects.create(frequency="weekly", period="2026-W48"),
        subscriber=make_subscriber("w@example.org", topics=["protein folding"]),
    )

    def deferred(delivery_ids, **kwargs):
        return delivery.BatchResult(retry=list(delivery_ids), retry_in=5.0)

    monkeypatch.setattr(delivery, "deliver_batch", deferred)
    assert tasks.deliver_batch.delay([row.id]).get()["retry"] == 1
    assert Delivery.objects.get(id=row.id).status == Delivery.Status.QUEUED


@pytest.fixture
def smtp_sink(settings):
    from devtools.smtp_sink import SmtpSink

    server = SmtpSink(pipelining=True).start()
    settings.EMAIL_BACKEND = "emails.smtp.SmtpBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
    settings.DIGEST_RETRY_BASE_SECONDS = 0.01
    settings.DIGEST_MAX_RETRY_DELAY_SECONDS = 1
    yield server
    server.stop()


def test_send_digests_retries_deferred_rows_inside_the_run_and_reports_what_it_sent(smtp_sink, capsys):
    make_papers()
    for name in ("a", "b", "c"):
        make_subscriber(f"{name}@example.org", topics=["protein folding"])
    smtp_sink.script("b@example.org", "451 4.3.0 Try again later", "421 4.3.2 Closing")
    smtp_sink.script_rcpt("c@example.org", "450 4.2.1 Greylisted")
    call_command("send_digests", "--now")
    out = capsys.readouterr().out
    assert "Sent: 3, deferred: 0, failed: 0" in out, out
    assert sorted(smtp_sink.by_recipient()) == ["a@example.org", "b@example.org", "c@example.org"]
    assert all(len(m) == 1 for m in smtp_sink.by_recipient().values())


def test_send_digests_exits_non_zero_while_rows_stay_undelivered_and_a_later_run_sends_them(smtp_sink, capsys):
    from django.core.management import CommandError

    make_papers()
    for name in ("a", "b"):
        make_subscriber(f"{name}@example.org", topics=["protein folding"])
    port = smtp_sink.port
    smtp_sink.stop()  # the mail server is down for the whole run
    with pytest.raises(CommandError, match="2 of 2 deliveries remain undelivered") as failed:
        call_command("send_digests", "--now")
    assert failed.value.returncode == 1
    assert "Sent: 0, deferred: 2, failed: 0" in capsys.readouterr().out
    rows = Delivery.objects.all()
    assert {r.status for r in rows} == {Delivery.Status.QUEUED}
    assert all("Connection refused" in r.last_error for r in rows)  # the dashboard says why they wait

    from devtools.smtp_sink import BulkController

    smtp_sink.controller = BulkController(smtp_sink, hostname="127.0.0.1", port=port)
    smtp_sink.start()  # back up: the next run sends what waited, once
    call_command("send_digests", "--now")
    out = capsys.readouterr().out
    assert "re-enqueued: 2" in out and "Sent: 2, deferred: 0" in out, out
    assert sorted(smtp_sink.by_recipient()) == ["a@example.org", "b@example.org"]


def test_with_workers_send_digests_hands_over_or_waits_for_their_outcome(settings, enqueued, capsys):
    from django.core.management import CommandError

    settings.CELERY_TASK_ALWAYS_EAGER = False
    make_papers()
    make_subscriber("a@example.org", topics=["protein folding"])
    call_command("send_digests", "--now")
    assert "Handed to the Celery workers" in capsys.readouterr().out and len(enqueued) == 1

    make_subscriber("b@example.org", topics=["protein folding"])
    with pytest.raises(CommandError, match="1 of 1 deliveries remain undelivered"):
        call_command("send_digests", "--now", "--wait", "1")  # no worker takes it in time
    assert "Sent: 0, deferred: 1, failed: 0" in capsys.readouterr().out
