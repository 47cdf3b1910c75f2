"""The dashboard driven in a real browser (Playwright + Debian's chromium), logged in as staff."""

from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.digests.dashboard_samples import build_showcase, build_small

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("own_cache")]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_the_dashboard_in_a_browser_with_a_screenshot(staff_page, live_server):
    build_showcase(timezone.now())
    page = staff_page
    requested = []
    page.on("request", lambda request: requested.append(request.url))

    page.click("text=Open the dashboard")

    expect(page).to_have_url(f"{live_server.url}/admin/dashboard/")
    for heading in ["Subscribers", "Issues", "Papers", "Topics", "Latest failures", "Actions"]:
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.locator("[data-testid=growth-chart] svg rect")).to_have_count(12)
    expect(page.locator("[data-testid=papers-chart] figcaption")).to_contain_text("huggingface daily")
    expect(page.locator("[data-testid=progress] .dash-progress-title")).to_have_text("Sending weekly 2026-W48")
    expect(page.locator("[data-testid=imports-table]")).to_contain_text("HTTP 503 Service Unavailable")
    expect(page.locator("[data-testid=topics-table] tbody tr").first).to_contain_text("large language models")
    expect(page.locator("[data-testid=failures] li")).to_have_count(10)
    # Charts, styles and script all come from this host: no request leaves it.
    assert requested and all(url.startswith(live_server.url) for url in requested), requested

    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1360, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 50_000


def test_the_progress_bar_refreshes_itself(staff_page, live_server):
    from digests.models import Delivery

    build_small()
    page = staff_page
    page.goto(f"{live_server.url}/admin/dashboard/")
    progress = page.locator("[data-testid=progress]")
    expect(progress.locator(".dash-progress-text")).to_have_text("4 of 7 done (57.1%)")
    expect(progress).to_have_attribute("data-state", "active")

    Delivery.objects.filter(status="queued").update(status="sent")
    expect(progress.locator(".dash-progress-text")).to_have_text("6 of 7 done (85.7%)")

    Delivery.objects.filter(status="sending").update(status="sent")
    expect(progress.locator(".dash-progress-title")).to_have_text("Last issue weekly 2026-W48: finished")
    expect(progress).to_have_attribute("data-state", "idle")
    assert progress.locator(".dash-progress-bar").evaluate("bar => bar.style.width") == "100%"


def test_preview_a_digest_in_the_browser(staff_page, live_server):
    from papers.models import Paper
    from subscriptions.models import Subscriber, Subscription, Topic

    reader = Subscriber.objects.create(email="reader@example.org", status="active", confirmed_at=timezone.now())
    topic = Topic.objects.create(query="language models")
    Subscription.objects.create(subscriber=reader, topic=topic)
    Paper.objects.create(
        key="2611.00001",
        title="Small language models that reason",
        abstract="Language models with few parameters can reason step by step.",
        abs_url="https://arxiv.org/abs/2611.00001",
        source="daily_json",
        first_seen_at=timezone.now(),
    )
    page = staff_page
    page.goto(f"{live_server.url}/admin/dashboard/")

    form = page.locator("[data-testid=preview-form]")
    form.get_by_label("Subscriber's email").fill("reader@example.org")
    form.get_by_role("button", name="Preview").click()

    expect(page.get_by_role("heading", name="Next digest of reader@example.org")).to_be_visible()
    text_pane = page.locator("[data-testid=preview-text]")
    expect(text_pane).to_contain_text("Small language models that reason")
    # The text part comes wrapped for mail clients: the pane shows its lines as they are.
    assert text_pane.evaluate("pane => getComputedStyle(pane).whiteSpace") == "pre"
    page.set_viewport_size({"width": 480, "height": 900})
    lines = text_pane.evaluate("pane => pane.textContent.split('\\n').length")
    line_height = text_pane.evaluate("pane => parseFloat(getComputedStyle(pane).lineHeight)")
    assert text_pane.evaluate("pane => pane.scrollHeight") <= (lines + 1) * line_height
    email_html = page.frame_locator("[data-testid=preview-html]")
    expect(email_html.get_by_role("link", name="Small language models that reason")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-preview.png"), full_page=True)


def test_sending_a_test_digest_is_confirmed_in_the_browser(staff_page, live_server):
    from django.contrib.admin.models import LogEntry
    from django.core import mail

    from papers.models import Paper
    from subscriptions.models import Subscriber, Subscription, Topic

    reader = Subscriber.objects.create(email="reader@example.org", status="active", confirmed_at=timezone.now())
    Subscription.objects.create(subscriber=reader, topic=Topic.objects.create(query="language models"))
    Paper.objects.create(key="2611.00001", title="Small language models that reason", first_seen_at=timezone.now())
    page = staff_page
    page.goto(f"{live_server.url}/admin/dashboard/")

    page.get_by_label("Digest of subscriber").fill("reader@example.org")
    page.get_by_label("Send to").fill("qa@example.org")
    page.locator("form[action='/admin/dashboard/send-test/'] button").click()

    expect(page.locator("[data-testid=confirm]")).to_contain_text(
        "Send the next digest of reader@example.org to qa@example.org now?"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-confirm.png"))
    assert mail.outbox == []

    page.get_by_role("button", name="Yes, send").click()

    expect(page.locator(".messagelist")).to_contain_text(
        "A test digest of reader@example.org was sent to qa@example.org."
    )
    assert [message.to for message in mail.outbox] == [["qa@example.org"]]
    assert LogEntry.objects.get().object_repr == "reader@example.org"
