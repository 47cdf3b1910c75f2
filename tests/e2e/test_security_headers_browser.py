"""Every kind of page in chromium under the Content-Security-Policy: nothing is refused
(no inline script, no outside host), maths still renders, and a 200-character word wraps
instead of widening the page."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from digests import delivery
from digests.models import Delivery, Issue
from papers.models import Paper
from ranking import index
from ranking.api import embed_papers
from subscriptions.links import FeedbackLinks, confirm_url, preferences_url, unsubscribe_url
from subscriptions.models import Subscriber, Subscription, Topic
from tests.pages.conftest import PAPERS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_WORD = "x" * 200  # the longest topic a form accepts, in one word


@pytest.fixture
def site(live_server, settings):
    cache.clear()
    index.clear_cache()
    settings.SITE_URL = live_server.url
    papers = [Paper.objects.create(**spec) for spec in PAPERS]
    embed_papers(papers)
    yield live_server.url, papers
    cache.clear()
    index.clear_cache()


def _reader(email, status, topics):
    reader = Subscriber.objects.create(email=email, status=status)
    for query in topics:
        Subscription.objects.create(subscriber=reader, topic=Topic.objects.get_or_create(query=query)[0])
    return reader


def test_no_page_breaks_the_policy(site, browser):
    url, papers = site
    reader = _reader("reader@example.org", Subscriber.Status.ACTIVE, ["video understanding", LONG_WORD])
    pending = _reader("pending@example.org", Subscriber.Status.PENDING, ["video understanding", LONG_WORD])
    Paper.objects.filter(id__in=[p.id for p in papers]).update(first_seen_at=timezone.now() - dt.timedelta(hours=1))
    row = Delivery.objects.create(issue=Issue.objects.create(frequency="weekly", period="2026-W11"), subscriber=reader)
    delivery.deliver_batch([row.id])
    User.objects.create_superuser("ops", "ops@example.org", "pw")

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    refused, outside = [], []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))

    web = next(line.split(": ", 1)[1] for line in mail.outbox[-1].body.splitlines() if "View in browser" in line)
    up, _ = FeedbackLinks(reader.id).of(papers[0].id)
    math_paper = next(p for p in papers if "$" in p.abstract)
    pages = [
        "/",
        "/papers/",
        "/search?q=video",
        f"/papers/{math_paper.id}/",
        "/subscribe/",
        "/manage/",
        preferences_url(reader),
        unsubscribe_url(reader),
        confirm_url(pending),
        up,
        web,
    ]
    for address in pages:
        response = page.goto(address if address.startswith("http") else url + address)
        assert response.status == 200, address
        assert "default-src 'self'" in response.headers["content-security-policy"], address
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, address
    page.goto(f"{url}/papers/{math_paper.id}/")
    page.wait_for_selector(".katex", state="attached")  # KaTeX ran: its script is allowed

    page.goto(f"{url}/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{url}/admin/dashboard/")
    page.wait_for_load_state("networkidle")
    assert LONG_WORD in page.content()  # the topics table shows it, wrapped
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert refused == [] and outside == []
    context.close()
