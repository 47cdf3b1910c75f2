"""A confirmation email the mail server refuses is recorded, shown on the dashboard and
retried like a digest; it never costs the signup."""

import pytest

from devtools.smtp_sink import SmtpSink
from digests.dashboard.alerts import delivery_alerts
from subscriptions import services, tasks
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db

SIGNUP = {"topics": ["diffusion models"], "frequency": "weekly", "weekday": 2, "timezone": "UTC"}


@pytest.fixture
def sink(settings):
    server = SmtpSink(pipelining=True).start()
    settings.EMAIL_BACKEND = "emails.smtp.SmtpBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
    yield server
    server.stop()


def test_a_refused_confirmation_is_recorded_shown_and_sent_by_the_hourly_retry(
    sink, django_capture_on_commit_callbacks
):
    sink.sender_refusal = "501 5.1.7 Bad sender address syntax"
    with django_capture_on_commit_callbacks(execute=True):
        assert services.subscribe(email="ada@example.org", **SIGNUP) == services.SignupOutcome.CONFIRMATION_SENT
    ada = Subscriber.objects.get()
    assert ada.status == Subscriber.Status.PENDING  # the signup stands
    assert ada.confirmation_error == "501 5.1.7 Bad sender address syntax (at mail)"
    alerts = delivery_alerts()
    assert [(c.email, c.error) for c in alerts.confirmations] == [("ada@example.org", ada.confirmation_error)]

    sink.sender_refusal = None  # the operator fixed the sender
    assert tasks.retry_failed_confirmations.delay().get() == 1
    assert list(sink.by_recipient()) == ["ada@example.org"]
    ada.refresh_from_db()
    assert (ada.confirmation_error, ada.confirmation_attempts) == ("", 1)
    assert delivery_alerts().confirmations == []
    assert tasks.retry_failed_confirmations.delay().get() == 0  # nothing left to retry


def test_the_hourly_retry_gives_up_after_the_last_attempt(sink, django_capture_on_commit_callbacks):
    sink.sender_refusal = "554 5.7.1 Sender rejected by policy"
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(email="ada@example.org", **SIGNUP)
    Subscriber.objects.update(confirmation_attempts=tasks.CONFIRMATION_MAX_ATTEMPTS)
    assert tasks.retry_failed_confirmations.delay().get() == 0


def test_the_retry_is_on_the_beat_schedule(settings):
    tasks_on_beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks.retry_failed_confirmations.name in tasks_on_beat
