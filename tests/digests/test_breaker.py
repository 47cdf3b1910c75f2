"""A misconfigured sender never costs the list: refusals about us suppress nobody, and
the circuit breaker pauses an issue whose sends keep failing the same permanent way."""

import re
import smtplib

import pytest
from django.core.mail.backends.smtp import EmailBackend

from digests import breaker, delivery
from digests.models import Delivery, Issue
from subscriptions.models import Subscriber
from tests.digests.helpers import make_subscriber, queued_delivery, smtp

pytestmark = pytest.mark.django_db

Status = Delivery.Status


@pytest.fixture
def list_of(papers):
    def make(count: int, issue=None):
        return [queued_delivery(make_subscriber(f"reader{n}@example.org"), issue=issue) for n in range(count)]

    return make


def test_a_sender_refused_at_mail_from_suppresses_nobody_and_pauses_the_issue(list_of, sink, settings):
    settings.DIGEST_BREAKER_CONSECUTIVE = 5
    rows = list_of(12)
    sink.sender_refusal = "501 5.1.7 Bad sender address syntax"
    result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))

    assert Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE).count() == 0
    assert (len(result.failed), len(result.paused), result.suppressed, result.retry) == (5, 7, [], [])
    issue = Issue.objects.get()
    assert issue.paused_at is not None
    assert "5 sends in a row failed permanently with 501 5.1.7" in issue.pause_reason
    failed = Delivery.objects.filter(status=Status.FAILED)
    assert {r.last_error for r in failed} == {"501 5.1.7 Bad sender address syntax (at mail)"}
    assert Delivery.objects.filter(status=Status.QUEUED).count() == 7
    assert sink.messages == []


def test_a_paused_issue_sends_nothing_until_an_operator_resumes_it(list_of, sink, settings):
    settings.DIGEST_BREAKER_CONSECUTIVE = 3
    rows = list_of(6)
    ids = [r.id for r in rows]
    sink.sender_refusal = "550 5.7.1 Sender address rejected: not owned by user"
    delivery.deliver_batch(ids, connection=smtp(sink))
    sink.sender_refusal = None  # the operator fixed DEFAULT_FROM_EMAIL

    again = delivery.deliver_batch(ids, connection=smtp(sink))
    assert sorted(again.paused) == sorted(Delivery.objects.filter(status=Status.QUEUED).values_list("id", flat=True))
    assert again.sent == [] and sink.messages == []

    enqueued = []
    assert breaker.resume(Issue.objects.get(), enqueue=enqueued.extend) == 6
    assert sorted(enqueued) == sorted(ids)
    assert delivery.deliver_batch(enqueued, connection=smtp(sink)).sent == sorted(ids)
    assert sorted(sink.by_recipient()) == sorted(f"reader{n}@example.org" for n in range(6))
    assert all(len(messages) == 1 for messages in sink.by_recipient().values())
    assert Issue.objects.get().paused_at is None


def test_user_unknown_at_rcpt_suppresses_that_address_and_the_rest_goes_on(list_of, sink):
    rows = list_of(4)
    sink.script_rcpt("reader1@example.org", "550 5.1.1 <reader1@example.org>: Recipient address rejected")
    sink.script_rcpt("reader2@example.org", "553 5.1.3 Bad recipient address syntax")
    result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert (result.suppressed, result.failed) == ([rows[1].id], [rows[2].id])
    bounced = Subscriber.objects.filter(status=Subscriber.Status.BOUNCED)
    assert list(bounced.values_list("email", flat=True)) == ["reader1@example.org"]
    assert Issue.objects.get().paused_at is None


def test_the_same_recipient_refusal_for_everyone_trips_the_breaker_before_it_suppresses_the_list(
    list_of, sink, settings
):
    """A relay that says "user unknown" to everyone is broken, not our list."""
    settings.DIGEST_BREAKER_CONSECUTIVE = 4
    rows = list_of(10)
    for n in range(10):
        sink.script_rcpt(f"reader{n}@example.org", "550 5.1.1 User unknown in relay recipient table")
    result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert len(result.suppressed) == 3 and len(result.paused) == 6
    assert Subscriber.objects.filter(status=Subscriber.Status.BOUNCED).count() == 3
    assert Issue.objects.get().paused_at is not None


def test_a_share_of_the_same_permanent_failure_pauses_the_issue(list_of, sink, settings):
    settings.DIGEST_BREAKER_CONSECUTIVE = 100
    settings.DIGEST_BREAKER_MIN_ATTEMPTS = 10
    settings.DIGEST_BREAKER_SHARE = 0.2
    rows = list_of(20)
    for n in (1, 4, 7, 9):
        sink.script(f"reader{n}@example.org", "554 5.7.1 Message rejected by policy")
    result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    issue = Issue.objects.get()
    assert issue.paused_at is not None
    assert re.match(r"4 of 1\d sends failed permanently with 554 5.7.1", issue.pause_reason)
    assert len(result.failed) == 4 and len(result.paused) > 0
    assert len(result.sent) + len(result.failed) + len(result.paused) == 20
    assert Subscriber.objects.filter(status=Subscriber.Status.BOUNCED).count() == 0


def test_a_paused_issue_is_not_rescued_by_the_dispatcher(list_of, enqueued, settings):
    from django.utils import timezone

    from digests import dispatch

    settings.DIGEST_RESCUE_AFTER_SECONDS = 1
    rows = list_of(3)
    Delivery.objects.update(updated_at=timezone.now() - timezone.timedelta(minutes=5))
    breaker.pause(rows[0].issue_id, "test")
    assert dispatch.dispatch_due(enqueue=lambda ids: enqueued.append(ids) or 1).rescued == 0


@pytest.mark.parametrize(
    "refusal",
    [
        smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"),
        smtplib.SMTPHeloError(550, b"5.7.1 Helo command rejected: need fully-qualified hostname"),
    ],
)
def test_a_permanent_refusal_at_ehlo_or_auth_pauses_the_issue_and_tries_nobody(list_of, refusal):
    class RefusingBackend(EmailBackend):
        def open(self):
            raise refusal

    rows = list_of(3)
    result = delivery.deliver_batch([r.id for r in rows], connection=RefusingBackend(host="127.0.0.1", port=1))
    assert sorted(result.paused) == sorted(r.id for r in rows) and result.retry == []
    issue = Issue.objects.get()
    assert issue.paused_at is not None and str(refusal.smtp_code) in issue.pause_reason
    assert {(r.status, r.attempts) for r in Delivery.objects.all()} == {(Status.QUEUED, 0)}
    assert Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE).count() == 0


def test_a_scattered_permanent_failure_costs_two_small_queries(list_of, django_assert_num_queries):
    from emails.replies import Refusal

    rows = list_of(3)
    Delivery.objects.filter(id=rows[0].id).update(status=Status.FAILED, last_error="550 5.1.1 No such user (at rcpt)")
    with django_assert_num_queries(2):  # the same failures so far, and whether the issue is paused
        assert breaker.note_permanent_failure(rows[0].issue_id, Refusal(550, "5.1.1 No such user", "rcpt")) is False
