"""The dashboard's subscriber import and export, and an issue's history with its send record."""

import csv
import io
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from digests.models import Delivery, Issue
from subscriptions.models import Subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache")]
FILES = Path(__file__).parents[1] / "subscriptions" / "csv"


def _upload(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (FILES / name).read_bytes(), content_type="text/csv")


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_importing_asks_first_with_the_number_of_people(client, staff):
    response = client.post(
        "/admin/dashboard/subscribers/import/", {"file": _upload("subscribers.csv"), "consent_confirmed": "on"}
    )

    assert response.status_code == 200
    assert response.context["summary"] == (
        "Import 6 new subscribers from subscribers.csv? 3 imported as confirmed; 3 sent a confirmation email."
    )
    assert not Subscriber.objects.exists()
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html and 'name="content"' in html


def test_confirming_the_import_saves_it_and_mails_the_others(client, staff, django_capture_on_commit_callbacks):
    asked = client.post(
        "/admin/dashboard/subscribers/import/", {"file": _upload("subscribers.csv"), "consent_confirmed": "on"}
    )
    carried = {name: asked.context["form"].data[name] for name in ("content", "file_name")}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/dashboard/subscribers/import/", {**carried, "consent_confirmed": "True", "confirmed": "yes"}
        )

    assert response.status_code == 302
    assert Subscriber.objects.count() == 6
    assert Subscriber.objects.filter(status="active").count() == 3
    assert len(mail.outbox) == 3
    assert LogEntry.objects.get().change_message.startswith("Imported subscribers from subscribers.csv: 3 imported")


def test_a_file_with_bad_rows_comes_back_with_each_line_named(client, staff):
    response = client.post("/admin/dashboard/subscribers/import/", {"file": _upload("with_bad_rows.csv")})

    assert response.status_code == 400
    problems = list(response.context["form"].non_field_errors())
    assert problems[0] == "Nothing was imported. Fix these rows and upload the file again:"
    assert [problem.split(":")[0] for problem in problems[1:]] == [f"Line {n}" for n in range(3, 10)]
    assert "Line 5: tz@example.org: unknown time zone &#x27;Mars/Olympus&#x27;." in response.content.decode()
    assert not Subscriber.objects.exists()


def test_the_subscriber_export_is_a_csv_of_everyone_and_is_logged(client, staff):
    Subscriber.objects.create(email="a@example.org", status="active", confirmed_at=timezone.now())
    Subscriber.objects.create(email="b@example.org", status="bounced", suppression_reason="550 no such user")

    response = client.get("/admin/dashboard/subscribers.csv")
    only_bounced = client.get("/admin/dashboard/subscribers.csv?status=bounced")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="subscribers-all-')
    assert [(row["email"], row["status"]) for row in _csv(response)] == [
        ("a@example.org", "active"),
        ("b@example.org", "bounced"),
    ]
    assert [row["suppression_reason"] for row in _csv(only_bounced)] == ["550 no such user"]
    assert LogEntry.objects.count() == 2


# Issue history -------------------------------------------------------------------------


@pytest.fixture
def sent_issue():
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    outcomes = [
        ("sent", 1, ""),
        ("sent", 1, ""),
        ("queued", 1, "451 4.3.0 Try again later"),
        ("queued", 0, ""),
        ("failed", 5, "550 5.1.1 No such user"),
        ("skipped", 0, "nothing new on the subscriber's topics"),
        ("suppressed", 0, "address suppressed: hard bounce"),
    ]
    for n, (status, attempts, error) in enumerate(outcomes):
        reader = Subscriber.objects.create(email=f"reader{n}@example.org", status="active")
        Delivery.objects.create(
            issue=issue,
            subscriber=reader,
            status=status,
            attempts=attempts,
            last_error=error,
            sent_at=timezone.now() if status == "sent" else None,
        )
    return issue


def test_the_history_counts_every_outcome(client, staff, sent_issue):
    response = client.get(f"/admin/dashboard/issues/{sent_issue.id}/")

    figures = {name: count for name, _, count in response.context["figures"]}
    assert figures == {
        "due": 7,
        "sent": 2,
        "deferred": 1,
        "waiting": 1,
        "failed": 1,
        "skipped": 1,
        "suppressed": 1,
    }
    assert 'href="?show=failed"' in response.content.decode()


def test_a_number_lists_its_rows_with_why(client, staff, sent_issue):
    response = client.get(f"/admin/dashboard/issues/{sent_issue.id}/?show=deferred")

    rows = response.context["listing"]["rows"]
    assert [(row.email, row.outcome, row.why) for row in rows] == [
        ("reader2@example.org", "deferred", "451 4.3.0 Try again later")
    ]


def test_the_rows_can_be_searched_and_paged(client, staff, sent_issue, monkeypatch):
    from digests.dashboard import history

    monkeypatch.setattr(history, "PAGE_SIZE", 3)
    first = client.get(f"/admin/dashboard/issues/{sent_issue.id}/?show=due")
    second = client.get(f"/admin/dashboard/issues/{sent_issue.id}/?show=due&page=3")
    found = client.get(f"/admin/dashboard/issues/{sent_issue.id}/?show=due&q=READER4")

    assert [row.email for row in first.context["listing"]["rows"]] == [f"reader{n}@example.org" for n in range(3)]
    assert first.context["listing"]["next"] == "?show=due&page=2"
    assert [row.email for row in second.context["listing"]["rows"]] == ["reader6@example.org"]
    assert [row.email for row in found.context["listing"]["rows"]] == ["reader4@example.org"]


def test_the_send_record_exports_who_got_it_who_did_not_and_why(client, staff, sent_issue):
    response = client.get(f"/admin/dashboard/issues/{sent_issue.id}/record.csv")
    failed = client.get(f"/admin/dashboard/issues/{sent_issue.id}/record.csv?show=failed")

    rows = _csv(response)
    assert len(rows) == 7
    assert {row["outcome"] for row in rows} == {"sent", "deferred", "waiting", "failed", "skipped", "suppressed"}
    assert [(row["email"], row["attempts"], row["why"]) for row in _csv(failed)] == [
        ("reader4@example.org", "5", "550 5.1.1 No such user")
    ]
    assert next(row for row in rows if row["outcome"] == "sent")["why"] == "accepted by the mail server"
    assert LogEntry.objects.filter(object_repr="weekly 2026-W48").count() == 2


def test_the_history_page_runs_a_fixed_number_of_queries(client, staff, sent_issue, django_assert_num_queries):
    # session + user, the issue, the counts; listing: count and page.
    with django_assert_num_queries(2 + 1 + 1):
        client.get(f"/admin/dashboard/issues/{sent_issue.id}/")
    with django_assert_num_queries(2 + 1 + 1 + 2):
        client.get(f"/admin/dashboard/issues/{sent_issue.id}/?show=due")


def test_the_send_record_export_reads_one_query_per_page(sent_issue, django_assert_num_queries, monkeypatch):
    from digests.dashboard import records

    monkeypatch.setattr(records, "EXPORT_PAGE", 5)
    with django_assert_num_queries(3):  # pages of 5: one full, one partial, one empty
        rows = list(records.record_rows(sent_issue.id))
    assert len(rows) == 8


def test_without_the_export_permission_the_history_shows_numbers_only(client, sent_issue):
    from django.contrib.auth import get_user_model

    clerk = get_user_model().objects.create_user("clerk", "c@example.org", "pw", is_staff=True)
    client.force_login(clerk)

    page = client.get(f"/admin/dashboard/issues/{sent_issue.id}/")

    assert page.status_code == 200
    assert "?show=" not in page.content.decode()
    assert client.get(f"/admin/dashboard/issues/{sent_issue.id}/?show=sent").status_code == 403
    assert client.get(f"/admin/dashboard/issues/{sent_issue.id}/record.csv").status_code == 403
    assert client.get("/admin/dashboard/subscribers.csv").status_code == 403
    assert client.get("/admin/dashboard/subscribers/import/").status_code == 403
