"""The public site in a real browser (Playwright + Debian's chromium), at 1280 px and on a
390 px phone, in light and dark mode: browsing days and tabs, searching, subscribing
from a search, a paper page's maths; and axe-core's accessibility check of each page."""

import email
import email.policy

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.cache import cache
from playwright.sync_api import expect

from papers.models import Paper
from ranking import index
from ranking.api import embed_papers
from subscriptions.models import Subscriber
from tests.pages.conftest import PAPERS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOOKS = [
    pytest.param((1280, 900, "light"), id="1280-light"),
    pytest.param((1280, 900, "dark"), id="1280-dark"),
    pytest.param((390, 844, "light"), id="390-light"),
    pytest.param((390, 844, "dark"), id="390-dark"),
]


@pytest.fixture
def site(live_server, settings):
    """The live site over the pages' test papers, sending real .eml files to the outbox."""
    cache.clear()
    index.clear_cache()
    settings.SITE_URL = live_server.url
    settings.EMAIL_BACKEND = "emails.outbox.OutboxBackend"
    embed_papers([Paper.objects.create(**spec) for spec in PAPERS])
    yield live_server.url
    cache.clear()
    index.clear_cache()


@pytest.fixture(params=LOOKS)
def page(request, browser, site):
    """A page at one width and colour scheme that records any request leaving the site."""
    width, height, scheme = request.param
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.outside = []
    page.errors = []
    page.on("request", lambda r: None if r.url.startswith(site) else page.outside.append(r.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.site = site
    yield page
    context.close()


def no_sideways_scrolling(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_browse_days_and_tabs(page):
    page.goto(page.site + "/")
    banner = page.get_by_text("Get trending papers in your email inbox!")
    expect(banner).to_be_visible()
    subscribe = page.get_by_role("complementary", name="Subscribe").get_by_role("link", name="Subscribe")
    box = subscribe.bounding_box()
    assert box["y"] + box["height"] <= page.viewport_size["height"]  # visible without scrolling
    expect(page.get_by_role("heading", level=1)).to_have_text("Friday, 13 March 2026")
    expect(page.locator(".entry-title").first).to_have_text(
        "Attention in O(n logn) Time for Long Context Language Models"
    )
    no_sideways_scrolling(page)

    page.get_by_role("link", name="← Wednesday, 11 March 2026").click()  # Thursday has no papers: skipped
    expect(page.get_by_role("heading", level=1)).to_have_text("Wednesday, 11 March 2026")
    expect(page.locator(".entry-title")).to_have_text(["Video Generation with Latent Diffusion"])

    page.get_by_role("navigation", name="View by").get_by_role("link", name="Weekly").click()
    expect(page).to_have_url(page.site + "/papers/week/2026-W11/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Week 11, 2026 (9–15 March)")
    expect(page.locator(".entry-title")).to_have_count(6)
    expect(page.locator(".entry-title").first).to_have_text("Reinforcement Learning for Legged Robot Locomotion")

    page.get_by_role("navigation", name="View by").get_by_role("link", name="Monthly").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("March 2026")
    page.get_by_role("link", name="Speech Recognition for Low-Resource Languages", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Speech Recognition for Low-Resource Languages")
    no_sideways_scrolling(page)
    assert page.outside == [] and page.errors == []


def test_search_then_subscribe_with_the_topic_filled_in(page, settings):
    page.goto(page.site + "/")
    page.get_by_role("searchbox", name="Search papers").fill("video understanding")
    page.get_by_role("searchbox", name="Search papers").press("Enter")
    expect(page.get_by_role("status")).to_contain_text("“video understanding”")
    expect(page.get_by_role("status")).to_contain_text(" s).")  # the time taken
    expect(page.locator(".entry-title").first).to_have_text("Long Video Understanding with Sparse Frame Sampling")
    # Its sentence that matches, the searched words in bold, inside the lines shown.
    snippet = page.locator(".entry").first.locator(".entry-snippet")
    expect(snippet).to_contain_text("We study video understanding for hour-long videos. Sparse frames answer")
    expect(snippet.locator("strong")).to_have_text(["video", "understanding", "videos", "video"])
    shown, last_bold = snippet.bounding_box(), snippet.locator("strong").nth(2).bounding_box()
    assert last_bold["y"] + last_bold["height"] <= shown["y"] + shown["height"] + 1
    no_sideways_scrolling(page)

    page.get_by_role("link", name="Email me new papers on 'video understanding'").click()
    expect(page).to_have_url(page.site + "/subscribe/?topic=video%20understanding")
    expect(page.get_by_label("Topics you follow")).to_have_value("video understanding")
    # The live preview ran on the filled-in topic (this week's papers only: March's are older).
    expect(page.locator("#preview-status")).to_have_text(
        "No strong matches for video understanding this week: we send only papers that match well. "
        "Broader words bring more."
    )
    page.get_by_label("Your email address").fill("reader@example.org")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    [path] = settings.OUTBOX_DIR.glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "reader@example.org"
    assert "video understanding" in message.get_body(("plain",)).get_content()
    assert [t.query for t in Subscriber.objects.get().topics.all()] == ["video understanding"]
    assert page.outside == [] and page.errors == []


def test_a_paper_page_renders_its_maths(page):
    paper = Paper.objects.get(key="2603.10002")
    page.goto(page.site + paper.get_absolute_url())
    abstract = page.locator(".paper-page-abstract")
    expect(abstract.locator(".katex").first).to_be_visible()
    expect(abstract.locator(".katex")).to_have_count(3)  # O(n^2), O(n log n), epsilon
    expect(abstract).not_to_contain_text("$O(n^2)$")
    expect(page.locator(".paper-page-title .katex")).to_have_count(1)
    # The title has no numbered badge (the paper list's counter) any more.
    assert page.evaluate("getComputedStyle(document.querySelector('h1'), '::before').content") in ("none", "normal")
    expect(page.get_by_role("link", name="Project page")).to_have_attribute("href", "https://longctx.example.org/")
    expect(page.get_by_role("heading", name="Similar papers")).to_be_visible()
    page.get_by_role("complementary", name="Get papers like this in your inbox").get_by_role("link").click()
    # The paper comes along as an example of what to follow ("more like this").
    expect(page.get_by_label("Papers like the ones you want (optional)")).to_have_value("2603.10002")
    no_sideways_scrolling(page)
    assert page.outside == [] and page.errors == []


def test_no_serious_accessibility_violations(page):
    paper = Paper.objects.get(key="2603.10002")
    axe = Axe()
    found = {}
    for path in (
        "/",
        "/papers/date/2026-03-12/",
        "/search?q=video",
        "/search",
        paper.get_absolute_url(),
        "/subscribe/",
    ):
        page.goto(page.site + path)
        page.wait_for_load_state("load")
        results = axe.run(page)
        serious = [
            (v["id"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if serious:
            found[path] = serious
    assert found == {}
