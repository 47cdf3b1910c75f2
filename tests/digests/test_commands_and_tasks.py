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
    make_papers()
    row = Delivery.objects.create(
        issue=Issue.objects.create(frequency="weekly", period="2026-W48"),
        subscriber=make_subscriber("w@example.org", topics=["protein folding"]),
    )

    def deferred(delivery_ids, **kwargs):
        return delivery.BatchResult(retry=list(delivery_ids), retry_in=5.0)

    monkeypatch.setattr(delivery, "deliver_batch", deferred)
    assert tasks.deliver_batch.delay([row.id]).get()["retry"] == 1
    assert Delivery.objects.get(id=row.id).status == Delivery.Status.QUEUED  # the next dispatch rescues it
