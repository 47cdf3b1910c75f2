"""Operators' pages: issue and delivery lists without N+1 queries; actions call the services."""

import pytest
from django.urls import reverse

from digests.models import Delivery, Issue
from subscriptions.models import Subscriber
from tests.digests.helpers import make_subscriber

pytestmark = pytest.mark.django_db
Status = Delivery.Status


@pytest.fixture
def rows():
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    statuses = [Status.SENT, Status.FAILED, Status.FAILED, Status.QUEUED, Status.SKIPPED]
    return [
        Delivery.objects.create(issue=issue, subscriber=make_subscriber(f"r{n}@example.org"), status=status)
        for n, status in enumerate(statuses)
    ]


def _list_queries(admin_client, url, django_assert_max_num_queries, limit):
    with django_assert_max_num_queries(limit) as captured:
        response = admin_client.get(url)
    assert response.status_code == 200
    return response, len(captured)


def test_delivery_list_query_count_does_not_grow_with_rows(admin_client, rows, django_assert_max_num_queries):
    url = reverse("admin:digests_delivery_changelist")
    _, few = _list_queries(admin_client, url, django_assert_max_num_queries, 20)
    issue = rows[0].issue
    for n in range(20):
        Delivery.objects.create(issue=issue, subscriber=make_subscriber(f"more{n}@example.org"))
    response, many = _list_queries(admin_client, url, django_assert_max_num_queries, 20)
    assert many == few
    assert "more19@example.org" in response.content.decode()


def test_issue_list_shows_counts_per_status(admin_client, rows):
    response = admin_client.get(reverse("admin:digests_issue_changelist"))
    assert response.status_code == 200
    cells = response.content.decode()
    assert 'class="field-failed">2<' in cells and 'class="field-sent">1<' in cells


def test_retry_failed_action(admin_client, rows, django_capture_on_commit_callbacks, monkeypatch):
    from digests import tasks

    batches = []
    monkeypatch.setattr(tasks.deliver_batch, "delay", lambda ids: batches.append(ids))
    selected = {"action": "retry_selected_failed", "_selected_action": [rows[1].id, rows[0].id]}
    asked = admin_client.post(reverse("admin:digests_delivery_changelist"), selected)
    assert asked.context["question"] == "Send 1 failed deliveries again? 1 person will get mail now."
    assert Delivery.objects.get(id=rows[1].id).status == Status.FAILED  # nothing before the yes
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:digests_delivery_changelist"), {**selected, "post": "yes"}, follow=True
        )
    assert "1 failed deliveries queued again." in response.content.decode()
    assert Delivery.objects.get(id=rows[1].id).status == Status.QUEUED
    assert Delivery.objects.get(id=rows[2].id).status == Status.FAILED  # not selected
    assert batches == [[rows[1].id]]

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:digests_issue_changelist"),
            {"action": "retry_failed_deliveries", "_selected_action": [rows[0].issue_id], "post": "yes"},
        )
    assert Delivery.objects.get(id=rows[2].id).status == Status.QUEUED


def test_suppress_and_restore_actions(admin_client, rows):
    url = reverse("admin:digests_delivery_changelist")
    asked = admin_client.post(url, {"action": "suppress_addresses", "_selected_action": [rows[3].id]})
    assert asked.context["question"] == "Suppress the addresses of these deliveries? 1 person will get no more mail."
    html = asked.content.decode()
    assert f'name="_selected_action" value="{rows[3].id}"' in html and 'name="post" value="yes"' in html
    assert Subscriber.objects.get(id=rows[3].subscriber_id).status != Subscriber.Status.BOUNCED
    admin_client.post(url, {"action": "suppress_addresses", "_selected_action": [rows[3].id], "post": "yes"})
    subscriber = Subscriber.objects.get(id=rows[3].subscriber_id)
    assert subscriber.status == Subscriber.Status.BOUNCED and subscriber.suppression_reason == "suppressed by admin"
    assert Delivery.objects.get(id=rows[3].id).status == Status.SUPPRESSED
    asked = admin_client.post(url, {"action": "restore_addresses", "_selected_action": [rows[3].id]})
    assert asked.context["question"] == "Restore the addresses of these deliveries? 1 person will get mail again."
    admin_client.post(url, {"action": "restore_addresses", "_selected_action": [rows[3].id], "post": "yes"})
    assert Subscriber.objects.get(id=rows[3].subscriber_id).status == Subscriber.Status.ACTIVE


def test_delivery_change_page_opens(admin_client, rows):
    response = admin_client.get(reverse("admin:digests_delivery_change", args=[rows[0].id]))
    assert response.status_code == 200
