"""What a digest shows, previewed and test-sent by operators."""

import datetime as dt
import re

import pytest
from django.core import mail

from digests import content
from digests.models import Delivery, Issue
from subscriptions.models import Subscriber
from tests.digests.helpers import make_subscriber
from tests.link_scan import database_state, links_in

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


def test_previews_and_test_copies_carry_inert_links_that_say_so(papers, client):
    subscriber = make_subscriber("p@example.org", topics=["protein folding"])
    content.send_test_digest(subscriber=subscriber, to_address="operator@example.org")
    (message,) = mail.outbox
    preview = content.preview_digest(subscriber)
    ours = {url for url in links_in(message) if url.startswith("http://testserver/")}
    ours |= {url for url in re.findall(r'href="(http://testserver/[^"]+)"', preview.html)}
    assert ours and all("/test-copy/" in url for url in ours), ours
    assert {"preferences", "unsubscribe", "up", "down"} <= {url.rstrip("/").rsplit("/", 1)[1] for url in ours}
    before = database_state()
    for url in ours:  # the operator (or the operator's mail scanner) clicks everything
        path = url.removeprefix("http://testserver")
        assert b"This is a test copy" in client.get(path).content
        assert client.post(path, {"vote": "1", "action": "pause"}).status_code == 405
    assert database_state() == before
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
