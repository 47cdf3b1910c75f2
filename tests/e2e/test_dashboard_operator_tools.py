"""An operator's tools driven in the browser: importing subscribers from a CSV file,
an issue's history down to the people behind a number, and the CSV downloads."""

import csv
import io
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("own_cache")]
FILES = Path(__file__).parents[1] / "subscriptions" / "csv"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def operator_page(staff_page, live_server):
    staff_page.goto(f"{live_server.url}/admin/dashboard/")
    expect(staff_page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    return staff_page


def _downloaded_csv(page, click) -> list[dict]:
    with page.expect_download() as download:
        click()
    return list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))


def test_importing_subscribers_from_a_csv_file(operator_page, live_server):
    from subscriptions.models import Subscriber

    page = operator_page
    form = page.locator("[data-testid=import-subscribers-form]")
    form.get_by_label("CSV file").set_input_files(str(FILES / "with_bad_rows.csv"))
    form.get_by_role("button", name="Check the file").click()

    problems = page.locator("[data-testid=form-problems]")
    expect(problems).to_contain_text("Nothing was imported.")
    expect(problems).to_contain_text("Line 3: 'not-an-address' is not an email address.")
    expect(problems).to_contain_text("Line 7: ok@example.org is also on line 2.")
    assert not Subscriber.objects.exists()

    page.get_by_label("CSV file").set_input_files(str(FILES / "subscribers.csv"))
    page.get_by_label("The rows marked consent=yes agreed to get this digest").check()
    page.get_by_role("button", name="Check the file").click()

    expect(page.locator("[data-testid=confirm]")).to_contain_text(
        "Import 6 new subscribers from subscribers.csv? 3 imported as confirmed; 3 sent a confirmation email."
    )
    assert not Subscriber.objects.exists()
    page.get_by_role("button", name="Yes, import").click()

    expect(page.locator(".messagelist")).to_contain_text("Imported subscribers.csv: 3 imported as confirmed")
    expect(page.locator("[data-testid=kpi-active] .dash-kpi-value")).to_have_text("3")
    assert Subscriber.objects.filter(status="pending").count() == 3

    exported = _downloaded_csv(page, lambda: page.get_by_role("link", name="Export all as CSV").click())
    assert sorted(row["email"] for row in exported) == sorted(Subscriber.objects.values_list("email", flat=True))


def test_from_a_number_to_the_people_behind_it(operator_page, live_server):
    from digests.models import Delivery, Issue
    from subscriptions.models import Subscriber

    issue = Issue.objects.create(frequency="weekly", period="2026-W48", created_at=timezone.now())
    for n, (status, error) in enumerate(
        [("sent", ""), ("sent", ""), ("failed", "550 5.1.1 No such user"), ("failed", "554 5.7.1 Rejected as spam")]
    ):
        reader = Subscriber.objects.create(email=f"reader{n}@example.org", status="active")
        Delivery.objects.create(issue=issue, subscriber=reader, status=status, attempts=1, last_error=error)
    page = operator_page
    page.reload()

    row = page.locator(f'[data-testid=issues-table] tr[data-issue="{issue.id}"]')
    row.locator('td[data-status="failed"] a').click()

    expect(page.get_by_role("heading", name="Failed: given up after errors")).to_be_visible()
    expect(page.locator("[data-testid=record] tbody tr")).to_have_count(2)
    expect(page.locator("[data-testid=record]")).to_contain_text("554 5.7.1 Rejected as spam")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-issue-history.png"), full_page=True)
    page.get_by_label("Address contains").fill("reader2")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("[data-testid=record] tbody tr")).to_have_count(1)
    expect(page.locator("[data-testid=record]")).to_contain_text("550 5.1.1 No such user")

    rows = _downloaded_csv(page, lambda: page.locator("[data-testid=export-record]").click())
    assert [(r["email"], r["outcome"], r["why"]) for r in rows] == [
        ("reader2@example.org", "failed", "550 5.1.1 No such user")
    ]

    page.locator('[data-category="sent"] a').click()
    expect(page.locator("[data-testid=listing-count]")).to_have_text("1–2 of 2")
    figures = page.locator("[data-testid=history]")
    expect(figures.locator('[data-category="due"] .dash-figure-value')).to_have_text("4")


def test_a_copy_added_to_a_finished_issue_shows_on_the_next_load(operator_page, live_server):
    """Issue 24: after a forced send the row kept "1 sent of 1" for ten minutes."""
    from digests.models import Delivery, Issue
    from subscriptions.models import Subscriber

    issue = Issue.objects.create(frequency="weekly", period="2026-W47", created_at=timezone.now())
    Delivery.objects.create(
        issue=issue, subscriber=Subscriber.objects.create(email="a@example.org", status="active"), status="sent"
    )
    Issue.objects.create(frequency="daily", period="2026-11-30", created_at=timezone.now())  # newer: W47 is cached
    page = operator_page
    page.reload()
    sent = page.locator(f'[data-testid=issues-table] tr[data-issue="{issue.id}"] td[data-status="sent"]')
    expect(sent).to_have_text("1")

    Delivery.objects.create(  # as a forced dispatch and a worker leave it
        issue=issue, subscriber=Subscriber.objects.create(email="b@example.org", status="active"), status="sent"
    )
    page.reload()

    expect(sent).to_have_text("2")
