"""The dashboard's "Needs attention" block: paused issues with their resume action,
deliveries waiting for a retry with their last error, refused confirmation emails."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from digests import breaker
from digests.models import Delivery, Issue
from subscriptions.models import Subscriber
from tests.digests.helpers import make_subscriber, queued_delivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache")]


def test_nothing_to_report_shows_no_block(client, staff):
    page = client.get(reverse("dashboard:index")).content.decode()
    assert 'id="delivery-alerts"' not in page


def test_a_paused_issue_deferred_rows_and_refused_confirmations_are_shown(client, staff):
    waiting = queued_delivery(make_subscriber("wait@example.org"), last_error="Connection unexpectedly closed")
    breaker.pause(waiting.issue_id, "20 sends in a row failed permanently with 501 5.1.7: 501 5.1.7 Bad sender")
    make_subscriber(
        "new@example.org", status=Subscriber.Status.PENDING, confirmation_error="501 5.1.7 Bad sender (at mail)"
    )
    page = client.get(reverse("dashboard:index")).content.decode()
    assert 'data-testid="paused-issue"' in page and "20 sends in a row failed permanently" in page
    assert reverse("dashboard:resume_issue", args=[waiting.issue_id]) in page
    assert "1 delivery waiting for a retry" in page and "Connection unexpectedly closed" in page
    assert "new@example.org" in page and "501 5.1.7 Bad sender (at mail)" in page


def test_resuming_a_paused_issue_asks_first_then_sends_what_it_held(
    client, staff, enqueued, django_capture_on_commit_callbacks
):
    rows = [queued_delivery(make_subscriber(f"r{n}@example.org")) for n in range(3)]
    Delivery.objects.filter(id=rows[0].id).update(status=Delivery.Status.FAILED, last_error="501 5.1.7 (at mail)")
    issue = Issue.objects.get()
    breaker.pause(issue.id, "test")
    url = reverse("dashboard:resume_issue", args=[issue.id])

    question = client.post(url, {})
    assert question.status_code == 200 and "Resume weekly 2026-W49?" in question.content.decode()
    assert "so 3 people get mail" in question.context["summary"]
    assert Issue.objects.get().paused_at is not None  # nothing changes before the confirmation

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"confirmed": "yes"}, follow=True)
    assert "is resumed: 3 deliveries are being sent" in done.content.decode()
    assert Issue.objects.get().paused_at is None
    assert sorted(sum(enqueued, [])) == sorted(r.id for r in rows)
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.QUEUED}
    assert LogEntry.objects.filter(change_message__startswith="Resumed the issue").count() == 1

    again = client.post(url, {"confirmed": "yes"})
    assert again.status_code == 400 and "is not paused" in again.content.decode()
