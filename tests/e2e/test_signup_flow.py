"""The signup journey in a real browser, reading mail the way a person would (.eml files)."""

import email
import email.policy
import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from papers.models import Paper
from subscriptions.models import Subscriber

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(live_server, settings):
    """The live site sending real .eml files; links in mail point at it."""
    cache.clear()
    settings.SITE_URL = live_server.url
    settings.EMAIL_BACKEND = "emails.outbox.OutboxBackend"
    Paper.objects.create(
        key="2611.00001",
        title="Diffusion Models Beat GANs on Video",
        abstract="diffusion video",
        upvotes=50,
        abs_url="https://arxiv.org/abs/2611.00001",
    )
    Paper.objects.create(
        key="2611.00002",
        title="Tool-using agents via reinforcement learning",
        abstract="reinforcement learning agents",
        upvotes=10,
        abs_url="https://arxiv.org/abs/2611.00002",
    )
    yield live_server.url
    cache.clear()


def read_outbox(settings):
    messages = []
    for path in sorted(settings.OUTBOX_DIR.glob("*.eml")):
        messages.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return messages


@pytest.fixture
def worker(monkeypatch):
    """Batches enqueued after a commit are sent at once, as a worker would."""
    from digests import delivery, tasks

    monkeypatch.setattr(tasks.deliver_batch, "delay", lambda ids: delivery.deliver_batch(list(ids)))


def test_sign_up_confirm_change_preferences_and_unsubscribe(site, browser, settings, worker):
    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()
    outside = []
    page.on("request", lambda r: None if r.url.startswith(site) else outside.append(r.url))
    page.goto(site + "/subscribe/")

    expect(page.get_by_label("Time zone")).to_have_value("America/New_York")  # from the browser
    page.get_by_label("Your email address").fill("ada@example.org")
    page.get_by_label("Topics you follow").fill("diffusion models")
    preview = page.locator("#preview-results")
    # The first preview may load the sentence model in the server: give it time.
    expect(page.locator("#preview-title")).to_have_text("Your digest this week", timeout=30_000)
    expect(preview).to_contain_text("Diffusion Models Beat GANs on Video")
    expect(preview).not_to_contain_text("Tool-using agents")

    page.get_by_role("button", name="reinforcement learning").click()  # a suggested topic
    expect(page.get_by_label("Topics you follow")).to_have_value("diffusion models\nreinforcement learning\n")
    expect(preview).to_contain_text("Tool-using agents")
    page.get_by_label("Day", exact=True).select_option("Wednesday")
    page.get_by_label("Time", exact=True).select_option("07:00")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    [confirmation] = read_outbox(settings)
    assert confirmation["To"] == "ada@example.org"
    assert confirmation["Subject"] == "Confirm your Paper Digest subscription"
    text = confirmation.get_body(("plain",)).get_content()
    html = confirmation.get_body(("html",)).get_content()
    link = re.search(r"(http://\S+/confirm/\S+/)", text).group(1)
    assert link in html and "reinforcement learning" in text
    assert Subscriber.objects.get().status == "pending"

    page.goto(link)
    page.get_by_role("button", name="Yes, send me the digest").click()
    expect(page.locator("p.notice")).to_contain_text("You're subscribed")
    subscriber = Subscriber.objects.get()
    assert (subscriber.status, subscriber.weekday, subscriber.send_hour, subscriber.timezone) == (
        "active",
        2,
        7,
        "America/New_York",
    )
    first_issue = re.compile(r"Your first digest arrives Wednesday \d+ \w+( \d{4})?, around 07:00 America/New_York")
    expect(page.locator("p.notice")).to_contain_text(first_issue)
    expect(page.get_by_label("Time", exact=True)).to_have_value("7")
    # The welcome issue: this week's strong matches, and the next issue's date.
    (welcome,) = [m for m in read_outbox(settings) if m["Subject"].startswith("Welcome")]
    assert re.fullmatch(
        r"Welcome: 2 papers on (diffusion models|reinforcement learning), \+1 topic", welcome["Subject"]
    )
    welcome_text = " ".join(welcome.get_body(("plain",)).get_content().split())
    assert "Diffusion Models Beat GANs on Video" in welcome_text
    assert re.search(
        r"Your first regular digest arrives Wednesday \d+ \w+( \d{4})?, around 07:00 America/New_York", welcome_text
    )

    # The preferences page previews the next digest live, as the signup page does.
    preview = page.locator("#preview-results")
    expect(page.locator("#preview-status")).to_have_text("2 papers for diffusion models, reinforcement learning.")
    expect(preview).to_contain_text("Diffusion Models Beat GANs on Video")  # what the saved settings bring
    page.get_by_label("Topics you follow").fill("reinforcement learning")
    expect(preview).to_contain_text("Tool-using agents")
    expect(preview).not_to_contain_text("Diffusion Models Beat GANs")
    # The time zone is picked from a list.
    zones = page.get_by_label("Time zone")
    assert zones.evaluate("e => e.tagName") == "SELECT" and zones.locator("option").count() > 300
    expect(zones).to_have_value("America/New_York")

    page.get_by_label("Daily").check()
    expect(page.get_by_label("Day", exact=True)).to_be_hidden()  # weekday only for weekly mail
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    page.get_by_label("Time", exact=True).select_option("21:00")
    page.get_by_label("Topics you follow").fill("state space models")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.locator("p.notice")).to_contain_text("Your preferences are saved")
    subscriber.refresh_from_db()
    assert (subscriber.frequency, subscriber.send_hour, subscriber.timezone) == ("daily", 21, "Asia/Tokyo")
    assert [t.query for t in subscriber.topics.all()] == ["state space models"]

    page.get_by_role("link", name="Unsubscribe").click()
    subscriber.refresh_from_db()
    assert subscriber.status == "active"  # opening the page changes nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed"
    assert len(read_outbox(settings)) == 2  # nothing but the confirmation and the welcome was ever sent
    assert outside == []
    context.close()


def test_signup_page_on_a_phone_by_keyboard(site, browser):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(site + "/subscribe/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling

    page.get_by_label("Your email address").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Topics you follow")).to_be_focused()
    page.keyboard.type("video diffusion")
    expect(page.locator("#preview-status")).to_contain_text("1 paper for video diffusion")
    chip = page.get_by_role("button", name="reinforcement learning")
    chip.focus()
    page.keyboard.press("Enter")
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#preview-status")).to_have_attribute("aria-live", "polite")
    context.close()


def test_follow_papers_like_one_from_its_page_and_the_catalogue(site, browser):
    page = browser.new_page()
    paper = Paper.objects.get(key="2611.00001")
    page.goto(f"{site}/papers/{paper.pk}/")
    page.get_by_role("link", name="Subscribe").last.click()
    examples = page.get_by_label("Papers like the ones you want (optional)")
    expect(examples).to_have_value("Diffusion Models Beat GANs on Video")  # its title, not the link's path
    # The form arrived filled in: its preview runs at once, for the example paper alone.
    expect(page.locator("#preview-title")).to_have_text("Your digest this week")
    nothing = "No papers this week like your example paper yet. A topic or two brings more."
    expect(page.locator("#preview-status")).to_have_text(nothing)

    finder = page.get_by_label("Find a paper in our catalogue")
    finder.fill("reinforcement learning")
    expect(page.locator("#catalogue-titles option")).to_have_count(1, timeout=15_000)
    assert (
        page.locator("#catalogue-titles option").get_attribute("value")
        == "Tool-using agents via reinforcement learning"
    )
    finder.fill("Tool-using agents via reinforcement learning")
    page.get_by_role("button", name="Add").click()
    both = "Diffusion Models Beat GANs on Video\nTool-using agents via reinforcement learning\n"
    expect(examples).to_have_value(both)
    expect(page.locator("#preview-status")).to_contain_text("like your example papers")

    page.get_by_label("Your email address").fill("ex@example.org")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    other = Paper.objects.get(key="2611.00002")
    assert Subscriber.objects.get().example_paper_ids == [paper.pk, other.pk]
    page.close()
