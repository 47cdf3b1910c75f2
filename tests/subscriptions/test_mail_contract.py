"""Our links inside mail built by mail.messages, followed the way a mail client does."""

import smtplib
from email import message_from_bytes, policy

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client

import emails
from subscriptions import notices, services
from subscriptions.links import preferences_url, unsubscribe_url
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(email="ada@example.org", topics=["rl"], frequency="weekly", weekday=0, timezone="UTC")
    subscriber = Subscriber.objects.get()
    services.confirm(subscriber)
    mail.outbox.clear()
    return subscriber


def test_list_unsubscribe_header_round_trip(active, settings):
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@example.org"
    rendered = emails.render(
        "manage",
        {
            "preferences_url": preferences_url(active),
            "unsubscribe_url": unsubscribe_url(active),
            "topics": ["rl"],
            "authors": [],
            "schedule": notices.describe_schedule(active),
            "paused": False,
        },
    )
    raw = emails.build_message(rendered, to=active.email, unsubscribe_url=unsubscribe_url(active)).message()
    parsed = message_from_bytes(raw.as_bytes(), policy=policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_target = parsed["List-Unsubscribe"].split(",")[0].strip()
    assert https_target.startswith("<http") and https_target.endswith(">")
    assert "mailto:unsubscribe@example.org" in parsed["List-Unsubscribe"]

    mail_client = Client(enforce_csrf_checks=True)  # no cookies, no CSRF token, like a mailbox provider
    response = mail_client.post(
        https_target[1:-1].replace(settings.SITE_URL, ""),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    active.refresh_from_db()
    assert active.status == "unsubscribed"


def test_a_mail_server_outage_does_not_break_signup(client, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "tests.subscriptions.test_mail_contract.DownBackend"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/",
            {"email": "bo@example.org", "topics": "rl", "frequency": "weekly", "weekday": "0", "timezone": "UTC"},
        )
    assert response.status_code == 200 and b"Check your inbox" in response.content
    assert Subscriber.objects.get().status == "pending"  # kept; signing up again sends a new link


class DownBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("connection refused")
