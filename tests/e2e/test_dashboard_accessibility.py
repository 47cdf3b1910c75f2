"""axe-core on every dashboard page and action page, in light and dark mode (issue 24):
no serious or critical violation."""

import json
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from tests.digests.dashboard_samples import build_showcase

FILES = Path(__file__).parents[1] / "subscriptions" / "csv"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("own_cache")]


def _pages(issue_id: int) -> list[str]:
    return [
        "/admin/",
        "/admin/dashboard/",
        "/admin/dashboard/preview/",
        "/admin/dashboard/send-test/",
        "/admin/dashboard/import/",
        "/admin/dashboard/import/upload/",
        "/admin/dashboard/dispatch/",
        f"/admin/dashboard/issues/{issue_id}/retry/",
        f"/admin/dashboard/issues/{issue_id}/resume/",
        "/admin/dashboard/suppress/",
        "/admin/dashboard/restore/",
        "/admin/dashboard/subscribers/import/",
        f"/admin/dashboard/issues/{issue_id}/",
        f"/admin/dashboard/issues/{issue_id}/?show=failed",
        f"/admin/dashboard/issues/{issue_id}/?show=due",
        f"/admin/dashboard/issues/{issue_id}/?show=due&q=nobody",
    ]


def _serious(page) -> list:
    results = Axe().run(page)
    return [
        (violation["id"], [node["target"] for node in violation["nodes"]][:3])
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations_on_dashboard_pages(page, live_server, scheme):
    build_showcase(timezone.now())
    from digests.models import Delivery, Issue

    failed_issue = Delivery.objects.filter(status="failed").values_list("issue_id", flat=True).first()
    # The "needs attention" section too: a paused issue and a delivery waiting for a retry.
    Issue.objects.filter(pk=failed_issue).update(paused_at=timezone.now(), pause_reason="554 5.7.1 refused x5")
    waiting = Delivery.objects.filter(status="queued").order_by("id").first()
    Delivery.objects.filter(pk=waiting.pk).update(attempts=2, last_error="451 4.3.0 later")
    reader = Delivery.objects.filter(status="sent").select_related("subscriber").first().subscriber
    get_user_model().objects.create_user(
        "operator", "op@example.org", "a-long-password", is_superuser=True, is_staff=True
    )
    page.emulate_media(color_scheme=scheme)
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/admin/login/")
    assert _serious(page) == []
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-password")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("operator")

    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(18, 18, 18)") == (scheme == "dark"), background  # the admin's own dark theme

    found = {}
    being_sent = f"/admin/dashboard/issues/{waiting.issue_id}/?show=due"  # waiting and deferred badges
    for path in [*_pages(failed_issue), being_sent]:
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        if path == "/admin/dashboard/":
            expect(page.locator("[data-testid=paused-issue]")).to_be_visible()
            expect(page.locator("[data-testid=deferred]")).to_be_visible()
        if violations := _serious(page):
            found[path] = violations
    # Pages reached through a form: a preview, a confirmation and a form shown back with errors.
    page.goto(f"{live_server.url}/admin/dashboard/send-test/")
    page.get_by_label("Digest of subscriber").fill(reader.email)
    page.get_by_label("Send to").fill("qa@example.org")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("[data-testid=confirm]")).to_be_visible()
    if violations := _serious(page):
        found["send-test confirmation"] = violations
    page.goto(f"{live_server.url}/admin/dashboard/suppress/")
    page.get_by_label("Address").fill("nobody@example.org")
    page.get_by_role("button", name="Suppress").click()
    expect(page.locator(".errorlist")).to_be_visible()
    if violations := _serious(page):
        found["suppress with an error"] = violations
    page.goto(f"{live_server.url}/admin/dashboard/subscribers/import/")
    page.get_by_label("CSV file").set_input_files(str(FILES / "with_bad_rows.csv"))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("[data-testid=form-problems]")).to_be_visible()
    if violations := _serious(page):
        found["import with bad rows"] = violations
    page.get_by_label("CSV file").set_input_files(str(FILES / "subscribers.csv"))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("[data-testid=confirm]")).to_be_visible()
    if violations := _serious(page):
        found["import confirmation"] = violations
    page.goto(f"{live_server.url}/admin/digests/delivery/?status__exact=failed")
    page.locator("input.action-select").first.check()
    page.select_option("select[name=action]", "suppress_addresses")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("[data-testid=confirm]")).to_contain_text("will get no more mail.")
    if violations := _serious(page):
        found["admin bulk action confirmation"] = violations
    page.goto(f"{live_server.url}/admin/dashboard/preview/?subscriber={reader.email}")
    page.get_by_role("button", name="Preview").click(timeout=60_000)  # ranks with the sentence model
    expect(page.locator("[data-testid=preview-subject], .dash-empty").first).to_be_visible(timeout=60_000)
    if violations := _serious(page):
        found["preview"] = violations
    assert found == {}, json.dumps(found, indent=1)
