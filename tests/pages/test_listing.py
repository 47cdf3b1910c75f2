"""The latest day, days, weeks and months."""

import re
from datetime import UTC, datetime

import pytest
from django.core import mail

from pages.selectors import decayed
from papers.models import Paper
from tests.pages.conftest import at, titles

pytestmark = pytest.mark.django_db


def test_home_shows_the_latest_day_by_upvotes_then_recency_with_subscribe_at_the_top(client, papers):
    html = client.get("/").content.decode()
    assert html.index("Get trending papers in your email inbox!") < html.index("<h1")
    assert re.search(r'<a class="button primary" href="/subscribe/">Subscribe</a>', html)
    assert '<h1 class="listing-title">Friday, 13 March 2026</h1>' in html
    assert titles(html, papers) == [
        "Attention in $O(n \\log n)$ Time for Long Context Language Models",  # 40 upvotes, 15:00
        "Long Video Understanding with Sparse Frame Sampling",  # 40 upvotes, 09:00
        "Speech Recognition for Low-Resource Languages",
    ]
    assert "Mei Tanaka, Omar Haddad" in html
    assert "Attention in O(n logn) Time" in html  # maths as Unicode where no script runs
    assert 'href="https://arxiv.org/abs/2603.10001"' in html and 'href="https://arxiv.org/pdf/2603.10001"' in html
    assert 'rel="prev" href="/papers/date/2026-03-11/"' in html  # Thursday the 12th has none: skipped
    assert 'rel="next"' not in html


def test_a_day_page_links_both_ways_skipping_empty_days(client, papers):
    html = client.get("/papers/date/2026-03-11/").content.decode()
    assert titles(html, papers) == ["Video Generation with Latent Diffusion"]
    assert 'rel="prev" href="/papers/date/2026-03-09/"' in html
    assert 'rel="next" href="/papers/date/2026-03-13/"' in html
    assert "Wednesday, 11 March 2026" in html


def test_an_empty_day_says_so_and_links_to_the_nearest_day_with_papers(client, papers):
    html = client.get("/papers/date/2026-03-10/").content.decode()
    assert "No papers on this day." in html
    assert 'href="/papers/date/2026-03-11/">See the nearest day with papers: Wednesday, 11 March 2026' in html
    later = client.get("/papers/date/2026-04-20/").content.decode()
    assert 'href="/papers/date/2026-03-13/">See the nearest day with papers' in later


def test_tabs_lead_to_the_week_and_month_of_the_day(client, papers):
    html = client.get("/papers/date/2026-03-11/").content.decode()
    tabs = re.search(r'<nav class="tabs".*?</nav>', html, re.DOTALL).group(0)
    assert re.findall(r'href="([^"]+)"', tabs) == [
        "/papers/date/2026-03-11/",
        "/papers/week/2026-W11/",
        "/papers/month/2026-03/",
    ]
    assert 'href="/papers/date/2026-03-11/" aria-current="page">Daily' in tabs
    week = client.get("/papers/week/2026-W11/").content.decode()
    assert "Week 11, 2026 (9–15 March)" in week
    assert 'aria-current="page">Weekly' in week
    assert len(titles(week, papers)) == 6


def test_a_week_is_ordered_by_upvotes_with_a_time_decay(client, db):
    # A week later than the fixtures: Monday 16 to Sunday 22 March 2026.
    early = Paper.objects.create(key="early", title="Early paper", first_seen_at=at(16, 6), upvotes=100)
    late = Paper.objects.create(key="late", title="Late paper", first_seen_at=at(22, 12), upvotes=60)
    plain = Paper.objects.create(key="plain", title="Plain paper", first_seen_at=at(22, 13), upvotes=20)
    html = client.get("/papers/week/2026-W12/").content.decode()
    # 100 votes 6.75 days before the week's end count 100 * 2^(-6.75/7) = 51; 60 votes half a day before, 57.
    assert titles(html, {p.key: p for p in (early, late, plain)}) == ["Late paper", "Early paper", "Plain paper"]
    assert "time decay" in html
    month = client.get("/papers/month/2026-03/").content.decode()
    assert titles(month, {p.key: p for p in (early, late, plain)}) == ["Early paper", "Late paper", "Plain paper"]


def test_decay_halves_per_period_of_age():
    assert decayed(80, 0, 7 * 86400) == 80
    assert decayed(80, 7 * 86400, 7 * 86400) == pytest.approx(40)
    assert decayed(80, -3600, 7 * 86400) == 80  # a clock slightly ahead never boosts


def test_a_day_shows_at_most_100_papers(client, db):
    Paper.objects.bulk_create(
        Paper(key=f"bulk-{n}", title=f"Paper number {n}", first_seen_at=at(2, 1 + n % 20), upvotes=n)
        for n in range(105)
    )
    html = client.get("/papers/date/2026-03-02/").content.decode()
    assert html.count('class="entry"') == 100
    assert "Paper number 104" in html and "Paper number 4<" not in html  # the most upvoted hundred


@pytest.mark.parametrize(
    "url", ["/papers/date/2026-02-30/", "/papers/week/2026-W54/", "/papers/month/2026-13/", "/papers/date/20260313/"]
)
def test_impossible_dates_are_not_found(client, papers, url):
    assert client.get(url).status_code == 404


def test_home_without_papers_says_so(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert "No papers yet" in response.content.decode()


def test_papers_index_goes_home(client, db):
    assert client.get("/papers/")["Location"] == "/"


def test_the_signup_form_posted_to_the_old_address_still_subscribes(client, django_capture_on_commit_callbacks):
    form = {"email": "old@example.org", "topics": "video", "frequency": "weekly", "weekday": "0", "timezone": "UTC"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/", form)
    assert response.status_code == 200 and b"Check your inbox" in response.content
    assert [m.to for m in mail.outbox] == [["old@example.org"]]


def test_day_boundaries_follow_the_site_time_zone(client, db, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    Paper.objects.create(
        key="tokyo", title="Seen late on the 13th in UTC", first_seen_at=datetime(2026, 3, 13, 20, tzinfo=UTC)
    )
    assert "Seen late on the 13th" in client.get("/papers/date/2026-03-14/").content.decode()  # 05:00 on the 14th
    assert "Saturday, 14 March 2026" in client.get("/").content.decode()
