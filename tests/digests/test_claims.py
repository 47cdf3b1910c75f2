"""claims: a row is taken by one worker at a time, and a handed-over message is never sent twice."""

import datetime as dt
import smtplib

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from digests import claims, delivery, retries
from digests.models import Delivery
from digests.ratelimit import LocalRateLimiter
from tests.digests.helpers import make_papers, make_subscriber, queued_delivery, smtp

pytestmark = pytest.mark.django_db

Status = Delivery.Status
UTC = dt.UTC
MONDAY_0900_UTC = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "handed_over", "lease", "claimable"),
    [
        (Status.QUEUED, False, None, True),
        (Status.SENDING, False, "expired", True),  # its worker died before the message went
        (Status.SENDING, False, "live", False),
        (Status.SENDING, True, "expired", False),  # the server has it: counted as sent, never retaken
        (Status.SENT, False, None, False),
        (Status.FAILED, False, None, False),
    ],
)
def test_a_claim_takes_exactly_the_claimable_rows_and_stores_what_the_copy_shows(status, handed_over, lease, claimable):
    now = timezone.now()
    claimed_at = {"expired": now - claims.sending_lease() - dt.timedelta(seconds=5), "live": now}.get(lease)
    row = queued_delivery(
        make_subscriber("c@example.org"), status=status, handed_over=handed_over, claimed_at=claimed_at, attempts=1
    )
    assert Delivery.objects.filter(claims.claimable(now), id=row.id).exists() == claimable  # the ORM's view
    carried = {"message_id": "<m@x>", "paper_ids": [3, 1], "items": [{"paper": 3, "topic": "t", "why": 'w "q"'}]}
    taken = claims.claim(row, carried, handed_over=True)
    row.refresh_from_db()
    assert (taken is not None) == claimable
    if claimable:
        assert (row.status, row.handed_over, row.claimed_at, row.attempts) == (Status.SENDING, True, taken, 2)
        assert (row.message_id, row.paper_ids, row.items) == ("<m@x>", [3, 1], carried["items"])
    else:
        assert (row.status, row.attempts, row.message_id) == (status, 1, "")


def test_a_handed_over_claim_whose_worker_died_is_counted_as_sent_not_sent_again(papers, sink):
    stale = timezone.now() - claims.sending_lease() - dt.timedelta(seconds=1)
    subscriber = make_subscriber("a@example.org")
    row = queued_delivery(
        subscriber, status=Status.SENDING, claimed_at=stale, attempts=1, handed_over=True, paper_ids=[1]
    )
    assert not Delivery.objects.filter(claims.claimable(timezone.now()), id=row.id).exists()
    result = delivery.deliver_batch([row.id], connection=smtp(sink))
    assert result.presumed_sent == [row.id] and result.sent == [] and sink.messages == []
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at, row.handed_over) == (Status.SENT, 1, stale, False)
    assert row.last_error.startswith("counted as sent")
    assert delivery.deliver_batch([row.id], connection=smtp(sink)).already_done == [row.id]


def test_over_smtp_the_claim_commits_with_the_final_dot(papers, sink, monkeypatch):

    from emails import smtp as smtp_steps

    row = queued_delivery(make_subscriber("a@example.org"))
    seen = {}
    real_claim, real_dot = claims.claim, smtp_steps.send_final_dot

    def claim_and_look(row, carried, *, handed_over):
        seen["messages at the server when claiming"] = len(sink.messages)
        seen["handed_over"] = handed_over
        return real_claim(row, carried, handed_over=handed_over)

    def dot_and_look(session):
        seen["dot written inside the claim's transaction"] = connection.in_atomic_block
        return real_dot(session)

    monkeypatch.setattr(claims, "claim", claim_and_look)
    monkeypatch.setattr(smtp_steps, "send_final_dot", dot_and_look)
    assert delivery.deliver_batch([row.id], connection=smtp(sink)).sent == [row.id]
    assert seen == {
        "messages at the server when claiming": 0,
        "handed_over": True,
        "dot written inside the claim's transaction": True,
    }
    assert len(sink.messages) == 1
    row.refresh_from_db()
    assert (row.status, row.handed_over, row.attempts) == (Status.SENT, False, 1)


def test_a_row_taken_by_another_worker_mid_transaction_is_dropped_at_the_server(papers, sink, monkeypatch):
    taken = queued_delivery(make_subscriber("taken@example.org"))
    fine = queued_delivery(make_subscriber("fine@example.org"))
    real_claim = claims.claim

    def competitor_first(row, carried, *, handed_over):
        if row.id == taken.id:  # another worker claims it while our message waits for its dot
            Delivery.objects.filter(id=row.id).update(status=Status.SENDING, claimed_at=timezone.now())
        return real_claim(row, carried, handed_over=handed_over)

    monkeypatch.setattr(claims, "claim", competitor_first)
    result = delivery.deliver_batch([taken.id, fine.id], connection=smtp(sink))
    assert result.busy == [taken.id] and result.sent == [fine.id]
    assert list(sink.by_recipient()) == ["fine@example.org"]  # the unfinished message was discarded
    assert len(sink.sessions) == 1  # the abandoned session never reached DATA's end


@pytest.mark.django_db(transaction=True)
def test_a_dot_that_cannot_be_written_leaves_no_handed_over_claim_and_no_message(sink, monkeypatch):
    from emails import smtp as smtp_steps

    make_papers()
    row = queued_delivery(make_subscriber("a@example.org"))

    def connection_breaks(session):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(smtp_steps, "send_final_dot", connection_breaks)
    result = delivery.deliver_batch([row.id], connection=smtp(sink))
    assert result.retry == [row.id]
    row.refresh_from_db()  # the claim was undone before its COMMIT; the attempt is counted
    assert (row.status, row.attempts, row.handed_over) == (Status.QUEUED, 1, False)
    assert row.last_error.startswith("Connection unexpectedly closed")
    assert sink.messages == []


def test_rows_held_by_a_live_claim_are_left_alone_and_retried_after_the_lease(papers):
    row = queued_delivery(make_subscriber("a@example.org"), status=Status.SENDING, claimed_at=timezone.now())
    result = delivery.deliver_batch([row.id])
    assert result.busy == [row.id] and result.retry_ids == [row.id]
    lease = claims.sending_lease().total_seconds()
    assert min(lease, retries.max_retry_delay()) - 2 <= result.retry_in <= retries.max_retry_delay()
    assert mail.outbox == [] and Delivery.objects.get(id=row.id).attempts == 0


def test_an_expired_claim_is_reclaimed_and_keeps_its_message_id(papers):
    stale = timezone.now() - claims.sending_lease() - dt.timedelta(seconds=1)
    subscriber = make_subscriber("a@example.org")
    row = queued_delivery(subscriber, status=Status.SENDING, claimed_at=stale, attempts=1, message_id="<x@testserver>")
    assert delivery.deliver_batch([row.id]).sent == [row.id]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.message_id) == (Status.SENT, 2, "<x@testserver>")
    assert mail.outbox[0].extra_headers["Message-ID"] == "<x@testserver>"


def test_a_row_claimed_by_another_worker_meanwhile_is_not_sent(papers):
    row = queued_delivery(make_subscriber("a@example.org"))

    class CompetitorWinsTheRace(LocalRateLimiter):
        def acquire(self, *args, **kwargs):
            Delivery.objects.filter(id=row.id).update(status=Status.SENDING, claimed_at=timezone.now())
            return 0.0

    result = delivery.deliver_batch([row.id], limiter=CompetitorWinsTheRace(1000))
    assert result.busy == [row.id] and result.sent == [] and mail.outbox == []
