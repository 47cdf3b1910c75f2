"""Papers are listed under the day they were announced (``Paper.announced_on``), not the
day we imported them; a paper whose source gave no date under the day it was first seen."""

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from papers.importers.text_page import heading_day
from papers.models import Paper
from ranking.api import embed_papers
from tests.pages.conftest import at, titles
from tests.papers import feeds

pytestmark = pytest.mark.django_db


@pytest.fixture
def backfilled(db):
    """Friday 13 March's paper imported a week later; Tuesday 10 March's imported on the
    16th along with a paper from a source that gives no date."""
    made = {
        "friday": Paper.objects.create(
            key="friday",
            title="Sparse Video Transformers",
            abstract="Video transformers with sparse attention.",
            announced_on=date(2026, 3, 13),
            first_seen_at=at(20, 9),
            upvotes=12,
        ),
        "tuesday": Paper.objects.create(
            key="tuesday",
            title="Video Diffusion for Robots",
            abstract="Robots plan with video diffusion.",
            announced_on=date(2026, 3, 10),
            first_seen_at=at(16, 9),
            upvotes=30,
        ),
        "undated": Paper.objects.create(
            key="undated",
            title="Graph Networks for Molecules",
            abstract="Message passing over molecular graphs.",
            first_seen_at=at(16, 23),
            upvotes=5,
        ),
    }
    embed_papers(list(made.values()))
    return made


def test_days_weeks_and_navigation_follow_the_announcement_day(client, backfilled):
    home = client.get("/").content.decode()
    assert "Monday, 16 March 2026" in home  # the undated paper's first-seen day is the latest
    assert titles(home, backfilled) == ["Graph Networks for Molecules"]
    assert 'rel="prev" href="/papers/date/2026-03-13/"' in home  # the 14th and 15th are empty

    friday = client.get("/papers/date/2026-03-13/").content.decode()
    assert titles(friday, backfilled) == ["Sparse Video Transformers"]
    assert 'rel="prev" href="/papers/date/2026-03-10/"' in friday
    assert 'rel="next" href="/papers/date/2026-03-16/"' in friday

    imported = client.get("/papers/date/2026-03-20/").content.decode()  # the day it was imported
    assert "No papers on this day" in imported
    assert 'href="/papers/date/2026-03-16/">See the nearest day with papers' in imported

    week = client.get("/papers/week/2026-W11/").content.decode()  # 9-15 March
    assert titles(week, backfilled) == ["Video Diffusion for Robots", "Sparse Video Transformers"]
    assert titles(client.get("/papers/week/2026-W12/").content.decode(), backfilled) == ["Graph Networks for Molecules"]
    paper = client.get(backfilled["friday"].get_absolute_url()).content.decode()
    assert 'href="/papers/date/2026-03-13/">Listed 13 March 2026</a>' in paper


def test_the_api_and_its_search_filter_by_the_announcement_day(client, backfilled):
    listed = client.get("/api/papers", {"date": "2026-03-13"}).json()["papers"]
    assert [(p["title"], p["date"]) for p in listed] == [("Sparse Video Transformers", "2026-03-13")]
    assert client.get("/api/papers", {"date": "2026-03-20"}).json() == {"papers": []}
    found = client.get("/api/papers", {"q": "video", "date": "2026-03-10"}).json()["papers"]
    assert [p["title"] for p in found] == ["Video Diffusion for Robots"]
    assert client.get("/api/papers", {"q": "video", "date": "2026-03-16"}).json() == {"papers": []}


def test_feeds_date_papers_by_their_announcement_day(client, db, settings):
    settings.SEARCH_CACHE_SECONDS = 0
    today = timezone.localdate()
    now = timezone.now()
    old = Paper.objects.create(
        key="old", title="Video Models Revisited", announced_on=today - timedelta(days=40), first_seen_at=now
    )
    recent = Paper.objects.create(
        key="recent", title="Video Models Today", announced_on=today - timedelta(days=2), first_seen_at=now
    )
    embed_papers([old, recent])
    search_feed = client.get("/feeds/search.atom", {"q": "video models"}).content.decode()
    assert "Video Models Today" in search_feed and "Revisited" not in search_feed  # older than a month
    assert f"<published>{today - timedelta(days=2):%Y-%m-%d}T00:00:00" in search_feed
    trending = client.get("/feeds/trending.atom").content.decode()
    assert "Video Models Today" in trending and "Revisited" not in trending


def test_the_trending_page_import_lists_every_paper_under_its_heading_day(client, tmp_path):
    """A trending page's papers are all listed on the day of its "Mar 13" heading (CI checks
    the same with the real 77-paper page, ``.ci/run``)."""
    path = tmp_path / "page.txt"
    path.write_text(feeds.text_page(feeds.samples(12), header="new\n\nSubscribe\n\nMar 13\n\n"), encoding="utf-8")
    call_command("import_papers", str(path), stdout=StringIO())
    day = heading_day("Mar 13", today=timezone.localdate())
    assert Paper.objects.filter(announced_on=day).count() == Paper.objects.count() == 12
    html = client.get("/").content.decode()
    assert f'<h1 class="listing-title">{day:%A}, {day.day} {day:%B %Y}</h1>' in html
    assert html.count('class="entry"') == 12
