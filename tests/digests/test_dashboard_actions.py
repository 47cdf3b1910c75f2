"""The dashboard's actions: forms, the confirmation step before mail, CSRF, the admin log,
and the services they call (papers.services, digests.services)."""

import datetime as dt
import re
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from digests.models import Delivery, Issue
from papers.models import ImportRun, Paper
from subscriptions.models import Subscriber, Subscription, Topic

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache")]

ATOM_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>cs.CL updates</title>
  <id>http://arxiv.org/a/cs.CL</id>
  <updated>2026-11-26T08:00:00Z</updated>
  <entry>
    <id>http://arxiv.org/abs/2611.01234v1</id>
    <title>Sparse attention for long-context language models</title>
    <summary>We make long-context language models cheaper with sparse attention.</summary>
    <author><name>Ada Lovelace</name></author>
    <link href="http://arxiv.org/abs/2611.01234v1" rel="alternate" type="text/html"/>
    <published>2026-11-25T18:00:00Z</published>
    <updated>2026-11-25T18:00:00Z</updated>
  </entry>
</feed>
"""


@pytest.fixture
def reader():
    """An active subscriber with one topic and a fresh paper that matches it."""
    subscriber = Subscriber.objects.create(
        email="reader@example.org", status="active", confirmed_at=timezone.now(), send_hour=0
    )
    topic = Topic.objects.create(query="language models")
    Subscription.objects.create(subscriber=subscriber, topic=topic)
    Paper.objects.create(
        key="2611.00001",
        arxiv_id="2611.00001",
        title="Small language models that <b>reason</b>",
        abstract="Language models with few parameters can reason step by step.",
        abs_url="https://arxiv.org/abs/2611.00001",
        source="daily_json",
        first_seen_at=timezone.now(),
    )
    return subscriber


def _log(user) -> list[str]:
    return [entry.change_message for entry in LogEntry.objects.filter(user=user).order_by("action_time")]


# CSRF and the confirmation step (no service is called before confirming) ---------------

POST_URLS = [
    "/admin/dashboard/preview/",
    "/admin/dashboard/send-test/",
    "/admin/dashboard/import/",
    "/admin/dashboard/import/upload/",
    "/admin/dashboard/dispatch/",
    "/admin/dashboard/issues/1/retry/",
    "/admin/dashboard/suppress/",
    "/admin/dashboard/restore/",
]


@pytest.mark.parametrize("url", POST_URLS)
def test_every_action_needs_a_csrf_token(staff, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    response = client.post(url, {"email": "reader@example.org", "confirmed": "yes"})

    assert response.status_code == 403
    assert not LogEntry.objects.exists()


def test_the_dashboard_forms_carry_the_csrf_token(client, staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    html = client.get("/admin/dashboard/").content.decode()

    assert html.count('name="csrfmiddlewaretoken"') == html.count("<form")


def test_sending_a_test_digest_asks_for_confirmation_first(client, staff, reader):
    response = client.post("/admin/dashboard/send-test/", {"subscriber": reader.email, "to_address": "qa@example.org"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Send the next digest of reader@example.org to qa@example.org now?" in html
    assert 'name="confirmed" value="yes"' in html
    assert 'type="hidden" name="to_address" value="qa@example.org"' in html
    assert mail.outbox == []
    assert not LogEntry.objects.exists()


def test_sending_due_digests_asks_for_confirmation_first(client, staff, reader):
    response = client.post("/admin/dashboard/dispatch/", {"frequency": "weekly", "force": "on"})

    assert response.status_code == 200
    question = response.context["summary"]
    assert question.startswith("Send the weekly digests now, to every active subscriber, due or not?")
    assert re.search(r"This emails 1 subscriber \(weekly \d{4}-W\d\d: 1\)\.$", question), question
    assert not Issue.objects.exists()
    assert not LogEntry.objects.exists()


def test_the_dispatch_question_counts_only_who_has_no_copy_yet(client, staff, reader):
    Subscriber.objects.create(email="paused@example.org", status="paused", confirmed_at=timezone.now())
    client.post("/admin/dashboard/dispatch/", {"frequency": "weekly", "force": "on", "confirmed": "yes"})
    assert Delivery.objects.count() == 1

    response = client.post("/admin/dashboard/dispatch/", {"frequency": "weekly", "force": "on"})

    assert response.context["summary"].endswith("Nobody is due: no email would go out.")


def test_retrying_an_issue_asks_for_confirmation_with_the_number_of_failures(client, staff, reader):
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    Delivery.objects.create(issue=issue, subscriber=reader, status="failed", last_error="451 try later")

    for response in (
        client.get(f"/admin/dashboard/issues/{issue.id}/retry/"),
        client.post(f"/admin/dashboard/issues/{issue.id}/retry/"),
    ):
        assert response.status_code == 200
        assert (
            "Send the 1 failed deliveries of weekly 2026-W48 to active subscribers again now?"
            in response.content.decode()
        )
    assert Delivery.objects.get().status == "failed"
    assert not LogEntry.objects.exists()


def test_retrying_an_unknown_issue_is_a_404(client, staff):
    assert client.get("/admin/dashboard/issues/999/retry/").status_code == 404


# Bad input is shown back --------------------------------------------------------------


def test_an_unknown_subscriber_is_shown_back_with_an_error(client, staff):
    response = client.post(
        "/admin/dashboard/send-test/", {"subscriber": "nobody@example.org", "to_address": "qa@x.org"}
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "No subscriber has this address." in html
    assert 'value="nobody@example.org"' in html
    assert mail.outbox == []


def test_a_subscriber_is_found_whatever_the_case_of_the_address(client, staff, reader):
    response = client.post(
        "/admin/dashboard/send-test/", {"subscriber": "Reader@Example.ORG", "to_address": "qa@x.org"}
    )

    assert response.status_code == 200
    assert "Send the next digest of reader@example.org to qa@x.org now?" in response.content.decode()


def test_a_bad_address_is_shown_back_with_an_error(client, staff, reader):
    response = client.post("/admin/dashboard/send-test/", {"subscriber": reader.email, "to_address": "not-an-address"})

    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()


def test_a_file_larger_than_the_limit_is_refused(client, staff, settings):
    settings.PAPER_MAX_BYTES = 1024
    upload = SimpleUploadedFile("big.json", b"[" + b" " * 2048 + b"]")

    response = client.post("/admin/dashboard/import/upload/", {"file": upload, "fmt": "auto"})

    assert response.status_code == 400
    assert "The file is larger than 1,024 bytes." in response.content.decode()
    assert not ImportRun.objects.exists()


def test_action_pages_can_be_opened_prefilled(client, staff, reader):
    assert (
        f'value="{reader.email}"'
        in client.get(f"/admin/dashboard/send-test/?subscriber={reader.email}").content.decode()
    )
    assert 'value="bad@example.org"' in client.get("/admin/dashboard/suppress/?email=bad@example.org").content.decode()


# The actions, with the real services --------------------------------------------------


def test_preview_shows_the_next_digest_as_html_and_text_and_is_logged(client, staff, reader):
    response = client.post("/admin/dashboard/preview/", {"subscriber": reader.email})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Small language models that &lt;b&gt;reason&lt;/b&gt;" in html  # in the text part, escaped
    assert 'sandbox srcdoc="' in html
    assert mail.outbox == []
    entry = LogEntry.objects.get(user=staff)
    assert entry.content_type == ContentType.objects.get_for_model(Subscriber)
    assert entry.object_id == str(reader.pk)
    assert entry.change_message == "Previewed the next digest from the dashboard."


def test_a_confirmed_test_digest_is_sent_to_the_given_address_only(client, staff, reader):
    response = client.post(
        "/admin/dashboard/send-test/",
        {"subscriber": reader.email, "to_address": "qa@example.org", "confirmed": "yes"},
    )

    assert response.status_code == 302 and response["Location"] == "/admin/dashboard/"
    assert [message.to for message in mail.outbox] == [["qa@example.org"]]
    assert "Small language models" in mail.outbox[0].body
    assert _log(staff) == ["Sent a test digest of this subscriber to qa@example.org."]


def test_confirmed_dispatch_sends_the_digests_and_is_logged(client, staff, reader):
    response = client.post("/admin/dashboard/dispatch/", {"frequency": "weekly", "force": "True", "confirmed": "yes"})

    assert response.status_code == 302
    assert Delivery.objects.filter(subscriber=reader).exists()
    assert _log(staff)[0].startswith("Sent the due weekly digests to every active subscriber, due or not")


def test_confirmed_retry_sends_the_failed_deliveries_again(client, staff, reader):
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    Delivery.objects.create(issue=issue, subscriber=reader, status="failed", attempts=1, last_error="451 try later")

    response = client.post(f"/admin/dashboard/issues/{issue.id}/retry/", {"confirmed": "yes"})

    assert response.status_code == 302
    assert Delivery.objects.get().status != "failed"
    entry = LogEntry.objects.get(user=staff)
    assert (entry.content_type.model, entry.object_id) == ("issue", str(issue.id))
    assert entry.change_message == "Retried 1 failed deliveries from the dashboard."


def test_suppress_then_restore_an_address(client, staff, reader):
    response = client.post("/admin/dashboard/suppress/", {"email": reader.email, "reason": "complaint"})
    assert response.status_code == 302
    reader.refresh_from_db()
    assert reader.suppressed_at is not None

    response = client.post("/admin/dashboard/restore/", {"email": reader.email})
    assert response.status_code == 302
    reader.refresh_from_db()
    assert reader.suppressed_at is None
    assert _log(staff) == [f"Suppressed {reader.email}: complaint", f"Restored {reader.email} after suppression."]


def test_suppressing_an_unknown_address_changes_nothing_and_says_so(client, staff):
    response = client.post("/admin/dashboard/suppress/", {"email": "nobody@example.org", "reason": "complaint"})

    assert response.status_code == 400
    assert "nothing changed" in response.content.decode()
    assert not LogEntry.objects.exists()


def test_uploading_a_feed_imports_its_papers(client, staff):
    upload = SimpleUploadedFile("cs.CL.atom", ATOM_FEED, content_type="application/atom+xml")

    response = client.post("/admin/dashboard/import/upload/", {"file": upload, "fmt": "atom"})

    assert response.status_code == 302
    assert Paper.objects.filter(title="Sparse attention for long-context language models").exists()
    assert _log(staff)[0].startswith("Imported papers from the uploaded file cs.CL.atom")


def test_a_malformed_upload_is_reported_and_imports_nothing(client, staff):
    upload = SimpleUploadedFile("broken.atom", b"<feed><entry><title>half", content_type="application/atom+xml")

    response = client.post("/admin/dashboard/import/upload/", {"file": upload, "fmt": "atom"})

    assert response.status_code == 400
    assert "Import failed" in response.content.decode()
    assert not Paper.objects.exists()
    assert not LogEntry.objects.exists()


def test_fetching_the_configured_sources_imports_them(client, staff, settings, tmp_path: Path):
    feed = tmp_path / "cs.CL.atom"
    feed.write_bytes(ATOM_FEED)
    settings.PAPER_SOURCES = [str(feed)]

    response = client.post("/admin/dashboard/import/")

    assert response.status_code == 302
    assert Paper.objects.filter(title="Sparse attention for long-context language models").exists()
    assert ImportRun.objects.filter(source=str(feed), status="ok").exists()
    assert _log(staff) == [
        "Imported papers from the configured sources: 1 source(s) imported: 1 new, 0 updated papers."
    ]


def test_a_failing_source_is_reported_to_the_operator(client, staff, settings, tmp_path: Path):
    settings.PAPER_SOURCES = [str(tmp_path / "missing.atom")]

    response = client.post("/admin/dashboard/import/", follow=True)

    shown = [str(message) for message in response.context["messages"]]
    assert any("missing.atom: no such file" in message for message in shown), shown
    assert ImportRun.objects.get().status == "failed"


def test_the_due_count_matches_what_dispatch_then_makes_in_few_queries(django_assert_num_queries):
    from digests import dispatch

    zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
    for n in range(20):
        Subscriber.objects.create(
            email=f"r{n}@example.org",
            status="active" if n % 5 else "paused",
            frequency="weekly" if n % 3 else "daily",
            weekday=n % 7,
            send_hour=n % 24,
            timezone=zones[n % len(zones)],
            confirmed_at=timezone.now(),
        )

    # A Monday morning in UTC, when all five zones are on the same date and ISO week: later
    # in the day Sydney's daily issue is already the next day's, a third issue to count.
    now = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
    with django_assert_num_queries(1 + 2):  # the schedules, then one count per issue (weekly, daily)
        due = dispatch.count_due(force=True, now=now)
    made = dispatch.dispatch_due(enqueue=lambda ids: 1, force=True, now=now)

    assert sum(due.values()) == made.created == 16
    assert sorted(due) == made.issues
