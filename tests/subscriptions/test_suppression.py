"""Suppressing and restoring addresses, and providers' events."""

import datetime as dt

import pytest

from digests.models import Delivery
from subscriptions import suppression
from subscriptions.models import Subscriber
from tests.digests.helpers import make_subscriber, queued_delivery

pytestmark = pytest.mark.django_db

Status = Delivery.Status
UTC = dt.UTC
MONDAY_0900_UTC = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_suppress_and_restore_an_address():
    subscriber = make_subscriber("Someone@Example.org".lower())
    row = queued_delivery(subscriber)
    assert suppression.suppress_address(" SOMEONE@example.org ", reason="complaint") == 1
    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.suppression_reason) == (Subscriber.Status.BOUNCED, "complaint")
    assert subscriber.suppressed_at is not None
    assert Delivery.objects.get(id=row.id).status == Status.SUPPRESSED
    assert suppression.suppress_address("someone@example.org", reason="again") == 0
    assert suppression.restore_address("someone@example.org") == 1
    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.suppressed_at) == (Subscriber.Status.ACTIVE, None)


def test_unsubscribed_people_are_not_turned_into_suppressed_ones():
    make_subscriber("u@example.org", status=Subscriber.Status.UNSUBSCRIBED)
    assert suppression.suppress_address("u@example.org", reason="bounce") == 0
    assert suppression.restore_address("u@example.org") == 0


@pytest.mark.parametrize(
    ("event_type", "reject_reason", "action", "status"),
    [
        ("bounced", "bounced", "suppressed", Subscriber.Status.BOUNCED),
        ("complained", "spam", "suppressed", Subscriber.Status.BOUNCED),
        ("rejected", "invalid", "suppressed", Subscriber.Status.BOUNCED),
        ("deferred", None, "ignored", Subscriber.Status.ACTIVE),
        ("delivered", None, "ignored", Subscriber.Status.ACTIVE),
        ("unsubscribed", None, "unsubscribed", Subscriber.Status.UNSUBSCRIBED),
    ],
)
def test_provider_events(event_type, reject_reason, action, status):
    make_subscriber("x@example.org")
    got = suppression.handle_provider_event(
        event_type=event_type, recipient="x@example.org", reject_reason=reject_reason, provider="postmark"
    )
    assert got == action
    assert Subscriber.objects.get(email="x@example.org").status == status
