"""Claims under real concurrency: several workers run the same batch at once."""

import threading

import pytest
from django.db import connections

from devtools.smtp_sink import SmtpSink
from digests import delivery
from digests.models import Delivery, Issue
from digests.ratelimit import LocalRateLimiter
from tests.digests.helpers import TOPIC_PAPERS, make_papers, make_subscriber

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_duplicate_tasks_running_together_send_each_row_once(settings):
    sink = SmtpSink().start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        make_papers()
        issue = Issue.objects.create(frequency="weekly", period="2026-W48")
        topics = list(TOPIC_PAPERS)
        ids = [
            Delivery.objects.create(
                issue=issue, subscriber=make_subscriber(f"c{n:02d}@example.org", topics=[topics[n % len(topics)]])
            ).id
            for n in range(40)
        ]
        results, errors = [], []
        start = threading.Barrier(4)

        def worker():
            try:
                start.wait()
                results.append(delivery.deliver_batch(ids, limiter=LocalRateLimiter(10_000)))
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        sent = sorted(i for result in results for i in result.sent)
        assert sent == sorted(ids)  # every row sent by exactly one of the four
        received = sink.by_recipient()
        assert len(received) == 40 and all(len(messages) == 1 for messages in received.values())
        assert set(Delivery.objects.values_list("status", "attempts")) == {(Delivery.Status.SENT, 1)}
    finally:
        sink.stop()
