"""The digests tasks: what they ask Celery to retry, and when."""

import datetime as dt

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from digests import retries, tasks
from digests.models import Delivery

pytestmark = pytest.mark.django_db

Status = Delivery.Status
UTC = dt.UTC
MONDAY_0900_UTC = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_backoff_grows_with_jitter_and_never_passes_the_visibility_timeout(settings):
    settings.CELERY_VISIBILITY_TIMEOUT = 3600
    delays = [[retries.retry_delay(attempt) for _ in range(50)] for attempt in range(1, 12)]
    ceiling = retries.max_retry_delay()
    assert ceiling < settings.CELERY_VISIBILITY_TIMEOUT
    assert all(0 < d <= ceiling for ds in delays for d in ds)
    assert max(delays[0]) < min(delays[3])  # exponential
    assert len(set(delays[2])) > 40  # jitter
    settings.CELERY_VISIBILITY_TIMEOUT = 60
    assert max(retries.retry_delay(20) for _ in range(50)) <= 30


def _retry_asked_by_the_task(monkeypatch, error: Exception, ids: list[int]) -> dict:
    """What ``deliver_batch`` (the task) asks Celery for when the service raises ``error``."""
    from celery.exceptions import Retry

    from digests import tasks

    def failing(delivery_ids):
        raise error

    monkeypatch.setattr(tasks.delivery, "deliver_batch", failing)
    retried = {}

    def fake_retry(**kwargs):
        retried.update(kwargs)
        return Retry()

    monkeypatch.setattr(tasks.deliver_batch, "retry", fake_retry)
    with pytest.raises(Retry):
        tasks.deliver_batch.run(ids)
    return retried


def test_deliver_batch_task_retries_the_batch_when_out_of_time(monkeypatch):
    retried = _retry_asked_by_the_task(monkeypatch, SoftTimeLimitExceeded(), [1, 2, 3])
    assert retried == {"args": [[1, 2, 3]], "countdown": 5}


@pytest.mark.parametrize("message", ["deadlock detected", "server closed the connection unexpectedly"])
def test_deliver_batch_task_retries_the_batch_when_the_database_fails_for_a_moment(monkeypatch, message):
    from django.db import OperationalError

    asked = []
    monkeypatch.setattr(tasks, "retry_delay", lambda attempt: asked.append(attempt) or 5.0)
    retried = _retry_asked_by_the_task(monkeypatch, OperationalError(message), [4, 5])
    assert asked == [1]  # the batch's first retry, with the service's backoff
    assert (retried["args"], retried["countdown"], str(retried["exc"])) == ([[4, 5]], 5, message)
