"""The web version at its signed URL, and provider webhooks through django-anymail."""

import base64
import json
import re

import pytest
from django.core import mail

from digests import delivery
from digests.models import Delivery, Issue
from subscriptions.models import Subscriber
from subscriptions.tokens import make_token
from tests.digests.helpers import make_papers, make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered():
    make_papers()
    subscriber = make_subscriber("reader@example.org", topics=["protein folding", "speech recognition"])
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    row = Delivery.objects.create(issue=issue, subscriber=subscriber)
    delivery.deliver_batch([row.id])
    row.refresh_from_db()
    return row


def test_view_in_browser_shows_the_same_digest(client, delivered):
    (message,) = mail.outbox
    url = re.search(r"View in browser: (\S+)", message.body).group(1)
    assert url.startswith("http://testserver/d/")
    response = client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200
    page = response.content.decode()
    email_html = message.alternatives[0][0]
    for title in ("Protein folding with sequence transformers", "Streaming speech recognition on phones"):
        assert title in page and title in email_html
    assert "Why you see this: Matches your topic “protein folding”" in page
    assert "View in browser" not in page  # it is the browser version
    assert response["X-Robots-Tag"] == "noindex" and response["Referrer-Policy"] == "no-referrer"


def test_web_version_needs_a_valid_token_for_a_sent_copy(client, delivered):
    missing = client.get("/d/not-a-token/")
    assert missing.status_code == 404 and b"This digest is not available" in missing.content
    other_purpose = make_token("unsubscribe", delivered.subscriber_id, d=delivered.id)
    assert client.get(f"/d/{other_purpose}/").status_code == 404
    wrong_subscriber = make_token("webview", delivered.subscriber_id + 1, d=delivered.id)
    assert client.get(f"/d/{wrong_subscriber}/").status_code == 404
    Delivery.objects.filter(id=delivered.id).update(status=Delivery.Status.QUEUED)
    assert client.get(f"/d/{make_token('webview', delivered.subscriber_id, d=delivered.id)}/").status_code == 404


def _postmark_bounce(client, email, bounce_type="HardBounce"):
    payload = {
        "RecordType": "Bounce",
        "Type": bounce_type,
        "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Email": email,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "BouncedAt": "2026-11-26T10:00:00Z",
    }
    auth = base64.b64encode(b"hook:secret").decode()
    return client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def test_provider_hard_bounce_webhook_suppresses_the_address(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:secret"}
    make_subscriber("gone@example.org")
    make_subscriber("full@example.org")
    assert _postmark_bounce(client, "gone@example.org").status_code == 200
    assert _postmark_bounce(client, "full@example.org", bounce_type="Transient").status_code == 200
    statuses = dict(Subscriber.objects.values_list("email", "status"))
    assert statuses == {"gone@example.org": Subscriber.Status.BOUNCED, "full@example.org": Subscriber.Status.ACTIVE}
    gone = Subscriber.objects.get(email="gone@example.org")
    assert gone.suppression_reason.startswith("Postmark bounced")


def test_webhook_without_the_secret_changes_nothing(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:other"}
    make_subscriber("gone@example.org")
    assert _postmark_bounce(client, "gone@example.org").status_code == 401
    assert Subscriber.objects.get(email="gone@example.org").status == Subscriber.Status.ACTIVE
