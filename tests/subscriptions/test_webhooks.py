"""Provider webhooks attacked over real HTTP: forged Postmark and SendGrid events must
change nothing unless they carry the configured secret; ``check --deploy`` warns when
mail goes through a provider without one."""

import base64
import json
import urllib.error
import urllib.request

import pytest
from django.core.checks import run_checks

from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db(transaction=True)

POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "Type": "HardBounce",
    "TypeCode": 1,
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Email": "reader@example.org",
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "BouncedAt": "2026-11-26T10:00:00Z",
}
POSTMARK_UNSUBSCRIBE = {
    "RecordType": "SubscriptionChange",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79484",
    "ServerID": 23,
    "ChangedAt": "2026-11-26T10:00:00Z",
    "Recipient": "reader@example.org",
    "Origin": "Recipient",
    "SuppressSending": True,
    "SuppressionReason": "ManualSuppression",
    "Tag": "",
    "Metadata": {},
}
SENDGRID_EVENTS = [
    {
        "email": "reader@example.org",
        "timestamp": 1764151200,
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "status": "5.1.1",
        "sg_event_id": "ZGVsaXZlcmVkLTAtMjQ1",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    },
    {"email": "reader@example.org", "timestamp": 1764151201, "event": "unsubscribe", "sg_event_id": "dW5zdWI"},
]
ATTACKS = [
    ("/anymail/postmark/tracking/", POSTMARK_BOUNCE),
    ("/anymail/postmark/tracking/", POSTMARK_UNSUBSCRIBE),
    ("/anymail/sendgrid/tracking/", SENDGRID_EVENTS),
]


def _post(live_server, path, payload, *, auth: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    request = urllib.request.Request(
        live_server.url + path, data=json.dumps(payload).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the live test server)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def reader():
    return Subscriber.objects.create(email="reader@example.org", status=Subscriber.Status.ACTIVE)


def _status(reader) -> str:
    reader.refresh_from_db()
    return reader.status


@pytest.mark.parametrize("debug", [True, False])
def test_without_a_configured_secret_every_webhook_is_refused(live_server, settings, reader, debug):
    settings.DEBUG = debug
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    for path, payload in ATTACKS:
        assert _post(live_server, path, payload) == 403
        assert _post(live_server, path, payload, auth="anyone:anything") == 403
    assert _status(reader) == Subscriber.Status.ACTIVE


def test_with_a_secret_only_its_holder_gets_in(live_server, settings, reader):
    settings.DEBUG = False
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:long-random-secret"}
    for path, payload in ATTACKS:
        assert _post(live_server, path, payload) == 401
        assert _post(live_server, path, payload, auth="hook:guess") == 401
        assert _post(live_server, path, payload, auth="hook:long-random-secret-and-more") == 401
    assert _status(reader) == Subscriber.Status.ACTIVE

    assert _post(live_server, *ATTACKS[0], auth="hook:long-random-secret") == 200
    assert _status(reader) == Subscriber.Status.BOUNCED


def test_sendgrid_unsubscribe_with_the_secret_unsubscribes(live_server, settings, reader):
    settings.ANYMAIL = {"WEBHOOK_SECRET": ["old:secret", "hook:long-random-secret"]}  # during a rotation
    assert _post(live_server, "/anymail/sendgrid/tracking/", SENDGRID_EVENTS[1:], auth="old:secret") == 200
    assert _status(reader) == Subscriber.Status.UNSUBSCRIBED


def _deploy_warnings():
    return [m.id for m in run_checks(include_deployment_checks=True) if m.id.startswith("subscriptions.")]


@pytest.mark.parametrize(
    "mail",
    [
        {"EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend"},
        {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "smtp.sendgrid.net"},
    ],
)
def test_check_deploy_warns_about_a_provider_without_a_webhook_secret(settings, mail):
    for name, value in mail.items():
        setattr(settings, name, value)
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    assert _deploy_warnings() == ["subscriptions.W001"]
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:long-random-secret"}
    assert _deploy_warnings() == []


def test_check_deploy_is_quiet_for_a_plain_smtp_server(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "mail.example.org"
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    assert _deploy_warnings() == []
