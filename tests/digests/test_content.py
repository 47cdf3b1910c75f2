"""What a digest shows, previewed and test-sent by operators."""

import datetime as dt

import pytest
from django.core import mail

from digests import content
from digests.models import Delivery, Issue
from tests.digests.helpers import make_subscriber

pytestmark = pytest.mark.django_db

Status = Delivery.Status
UTC = dt.UTC
MONDAY_0900_UTC = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_preview_renders_the_next_digest_and_records_nothing(papers):
    subscriber = make_subscriber("p@example.org", topics=["protein folding"])
    rendered = content.preview_digest(subscriber, now=MONDAY_0900_UTC)
    assert "Protein folding with sequence transformers" in rendered.html
    assert "week of 7 December 2026" in rendered.text  # 09:00 is past Monday's 08:00: the next one
    assert Delivery.objects.count() == 0 and Issue.objects.count() == 0 and mail.outbox == []


def test_test_send_goes_to_the_operator_without_unsubscribe_headers(papers):
    subscriber = make_subscriber("p@example.org", topics=["protein folding"])
    content.send_test_digest(subscriber=subscriber, to_address="operator@example.org")
    (message,) = mail.outbox
    assert message.to == ["operator@example.org"] and message.subject.startswith("[Test]")
    assert "List-Unsubscribe" not in message.extra_headers
    assert "Protein folding with sequence transformers" in message.body
    assert Delivery.objects.count() == 0
