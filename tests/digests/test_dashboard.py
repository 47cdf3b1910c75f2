"""The dashboard page: its numbers, its fixed query count and who may see it."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from digests.dashboard import alerts, selectors
from digests.dashboard.charts import growth_chart, nice_scale, papers_chart
from tests.digests.dashboard_samples import NOW, SMALL_STATUSES, build_showcase, build_small

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache")]

PAGE = "/admin/dashboard/"
ACTION_URLS = [
    "/admin/dashboard/progress.json",
    "/admin/dashboard/preview/",
    "/admin/dashboard/send-test/",
    "/admin/dashboard/import/",
    "/admin/dashboard/import/upload/",
    "/admin/dashboard/dispatch/",
    "/admin/dashboard/issues/1/retry/",
    "/admin/dashboard/suppress/",
    "/admin/dashboard/restore/",
]


@pytest.fixture
def small():
    return build_small(NOW)


@pytest.fixture
def small_today():
    """The small set as of the real clock, for the tests that go through the page (the
    view counts up to the moment it is asked)."""
    return build_small(timezone.now())


# Subscribers ---------------------------------------------------------------------------


def test_subscribers_are_counted_by_status_with_the_confirmation_rate(small):
    stats = selectors.subscriber_stats(now=NOW)

    assert stats.by_status == SMALL_STATUSES
    assert stats.total == 13
    assert stats.confirmed == 10
    assert stats.confirmation_rate == pytest.approx(10 / 13)


def test_growth_covers_twelve_weeks_with_signups_unsubscribes_and_running_total(small):
    growth = selectors.subscriber_stats(now=NOW).growth

    assert [point.week_start for point in growth] == [
        date(2026, 11, 23) - timedelta(weeks=n) for n in range(11, -1, -1)
    ]
    by_week = {point.week_start: point for point in growth}
    assert by_week[date(2026, 10, 19)].signups == 1  # bounced0
    assert by_week[date(2026, 11, 2)].signups == 1  # paused0
    assert by_week[date(2026, 11, 16)].signups == 2  # active4, active5
    assert by_week[date(2026, 11, 23)].signups == 5  # active2, active3, 3 pending
    assert by_week[date(2026, 11, 23)].unsubscribes == 2
    assert [point.total for point in growth] == [4, 4, 4, 4, 4, 4, 5, 5, 6, 6, 8, 11]
    assert sum(p.signups for p in growth) == 9  # the 4 older sign-ups are in the starting total


def test_subscriber_stats_without_anyone():
    stats = selectors.subscriber_stats(now=NOW)

    assert stats.total == 0
    assert stats.confirmation_rate is None
    assert [p.total for p in stats.growth] == [0] * 12


# Issues --------------------------------------------------------------------------------


def test_recent_issues_count_deliveries_by_status(small):
    newer, older = selectors.recent_issues()

    assert (newer.label, older.label) == ("weekly 2026-W48", "weekly 2026-W47")
    assert older.counts == {"queued": 0, "sending": 0, "sent": 4, "failed": 1, "skipped": 0, "suppressed": 1}
    assert (older.total, older.in_progress, older.percent) == (6, False, 100.0)
    assert newer.counts == {"queued": 2, "sending": 1, "sent": 2, "failed": 1, "skipped": 1, "suppressed": 0}
    assert (newer.total, newer.pending, newer.done) == (7, 3, 4)
    assert newer.in_progress
    assert newer.percent == pytest.approx(57.1)


def test_finished_issues_counts_are_cached_but_the_newest_issue_is_always_counted(small):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = selectors.recent_issues()
    with CaptureQueriesContext(connection) as queries:
        again = selectors.recent_issues()

    assert again == first
    counting = queries.captured_queries[-1]["sql"]
    assert f"IN ({first[0].issue_id})" in counting  # only the newest issue is counted again
    selectors.forget_issue_counts()
    with CaptureQueriesContext(connection) as queries:
        selectors.recent_issues()
    assert str(first[1].issue_id) in queries.captured_queries[-1]["sql"]


def test_a_forced_send_to_a_finished_issue_shows_at_once(small):
    """Issue 24: after a forced send the row kept "1 sent of 1" for ten minutes."""
    from digests.models import Delivery
    from subscriptions.models import Subscriber

    before = selectors.recent_issues()[1]
    late = Subscriber.objects.create(email="late@example.org", status="active")
    Delivery.objects.create(issue_id=before.issue_id, subscriber=late, status="sent")  # as dispatch + a worker do

    after = selectors.recent_issues()[1]

    assert after.counts["sent"] == before.counts["sent"] + 1
    assert after.total == before.total + 1


def test_a_deleted_subscriber_leaves_the_counts_at_once(small):
    from digests.models import Delivery

    before = selectors.recent_issues()[1]
    Delivery.objects.filter(issue_id=before.issue_id).first().subscriber.delete()

    assert selectors.recent_issues()[1].total == before.total - 1


def test_with_the_cache_down_the_dashboard_counts_everything_itself(small_today, client, settings):
    from django.test import override_settings

    from digests.models import Delivery

    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "pw")
    client.force_login(user)
    Delivery.objects.filter(status="failed").update(status="sent")
    nobody_listens = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    with override_settings(
        CACHES={"default": nobody_listens, **{k: v for k, v in settings.CACHES.items() if k != "default"}}
    ):
        newer, older = selectors.recent_issues()
        selectors.forget_issue_counts()  # with nothing to forget
        response = client.get(PAGE)
    assert (newer.counts["failed"], older.counts["failed"]) == (0, 0)
    assert response.status_code == 200


def test_an_issue_being_sent_is_never_cached(small):
    from digests.models import Delivery, Issue

    Issue.objects.create(frequency="daily", period="2026-11-26", created_at=NOW)  # now "newer" is not the newest
    selectors.recent_issues()
    Delivery.objects.filter(issue=small["newer"], status="queued").update(status="sent")

    assert selectors.recent_issues()[1].counts["queued"] == 0


def test_current_issue_is_the_one_being_sent_even_when_a_newer_one_is_done(small):
    from digests.models import Issue

    Issue.objects.create(frequency="daily", period="2026-11-26", created_at=NOW)  # newest, no deliveries

    progress = selectors.current_issue_progress()

    assert progress.issue_id == small["newer"].id
    assert progress.as_json() == {
        "issue_id": small["newer"].id,
        "label": "weekly 2026-W48",
        "counts": {"queued": 2, "sending": 1, "sent": 2, "failed": 1, "skipped": 1, "suppressed": 0},
        "total": 7,
        "done": 4,
        "pending": 3,
        "percent": 57.1,
        "in_progress": True,
    }


def test_current_issue_falls_back_to_the_newest_when_nothing_is_being_sent(small):
    from digests.models import Delivery

    Delivery.objects.filter(status__in=["queued", "sending"]).update(status="sent")

    progress = selectors.current_issue_progress()

    assert progress.issue_id == small["newer"].id
    assert not progress.in_progress
    assert progress.percent == 100.0


def test_current_issue_without_issues():
    assert selectors.current_issue_progress() is None


def test_latest_failures_show_address_issue_and_error_newest_first(small):
    failures = selectors.latest_failures()

    assert [(f.email, f.issue_label, f.attempts, f.error) for f in failures] == [
        ("paused0@example.org", "weekly 2026-W48", 1, "451 4.3.0 Try again later"),
        ("active4@example.org", "weekly 2026-W47", 3, "550 5.1.1 <active4@example.org>: No such user"),
    ]


# Papers --------------------------------------------------------------------------------


def test_papers_are_counted_per_day_and_source_over_thirty_days(small):
    papers = selectors.papers_per_day(now=NOW)

    assert len(papers.days) == 30
    assert (papers.days[0], papers.days[-1]) == (date(2026, 10, 28), date(2026, 11, 26))
    assert papers.total == 6  # p7 is 40 days old
    assert papers.sources == ["daily_json", "atom", "unknown"]
    assert papers.counts[date(2026, 11, 26)] == {"daily_json": 3}
    assert papers.counts[date(2026, 11, 25)] == {"atom": 2}
    assert papers.counts[date(2026, 11, 16)] == {"unknown": 1}
    assert papers.per_source_totals() == {"daily_json": 3, "atom": 2, "unknown": 1}


def test_last_import_per_source_keeps_the_newest_run_with_its_result_or_error(small):
    runs = selectors.last_import_per_source()

    assert [(r.source, r.status, r.created, r.updated, r.unchanged, r.error) for r in runs] == [
        ("/data/daily.json", "failed", 0, 0, 0, "HTTP 503 <b>Service Unavailable</b>"),
        ("https://feeds.example/a", "ok", 2, 1, 7, ""),
    ]


# Topics --------------------------------------------------------------------------------


def test_top_topics_have_follower_counts_and_feedback(small):
    topics = selectors.top_topics()

    assert [(t.query, t.active_followers, t.followers, t.thumbs_up, t.thumbs_down) for t in topics] == [
        ("large language models", 6, 8, 2, 1),
        ("graph neural networks", 1, 2, 0, 1),
        ("<script>alert(1)</script> attention", 0, 1, 0, 0),
    ]
    assert topics[0].approval == 67
    assert topics[2].approval is None


# Query counts --------------------------------------------------------------------------


def test_the_dashboard_runs_a_fixed_number_of_queries_whatever_the_data_size(django_assert_num_queries):
    build_small(NOW)
    with django_assert_num_queries(selectors.DASHBOARD_QUERIES):
        small = selectors.dashboard(now=NOW)

    build_showcase(NOW, subscribers=300)
    with django_assert_num_queries(selectors.DASHBOARD_QUERIES):
        big = selectors.dashboard(now=NOW)
    with django_assert_num_queries(selectors.DASHBOARD_QUERIES):  # finished issues now come from the cache
        assert selectors.dashboard(now=NOW) == big

    assert big.subscribers.total == small.subscribers.total + 300
    assert len(big.issues) == selectors.RECENT_ISSUES
    assert len(big.failures) == selectors.LATEST_FAILURES
    assert len(big.topics) == selectors.TOP_TOPICS


def test_the_page_runs_a_fixed_number_of_queries(client, staff, django_assert_num_queries):
    build_small(NOW)
    # session + user, then the dashboard's aggregates; nothing per row.
    with django_assert_num_queries(2 + selectors.DASHBOARD_QUERIES + alerts.ALERT_QUERIES):
        assert client.get(PAGE).status_code == 200
    build_showcase(NOW, subscribers=200)
    with django_assert_num_queries(2 + selectors.DASHBOARD_QUERIES + alerts.ALERT_QUERIES):
        assert client.get(PAGE).status_code == 200


def test_the_progress_endpoint_runs_two_queries(client, staff, small_today, django_assert_num_queries):
    with django_assert_num_queries(2 + 2):
        response = client.get(reverse("dashboard:progress"))

    assert response.status_code == 200
    assert response.json()["issue"]["label"] == "weekly 2026-W48"
    assert response.json()["issue"]["done"] == 4


# The page ------------------------------------------------------------------------------


def _cell(html: str, marker: str) -> str:
    """The text of the first element carrying ``marker`` (a data attribute)."""
    from bs4 import BeautifulSoup

    element = BeautifulSoup(html, "html.parser").select_one(marker)
    assert element is not None, marker
    return " ".join(element.get_text(" ").split())


def test_the_page_shows_every_section_with_its_numbers(client, staff, small_today, settings):
    settings.PAPER_SOURCES = ["https://feeds.example/a"]
    response = client.get(PAGE)
    html = response.content.decode()

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")  # admin_view: never cached
    # Subscribers
    for status, count in SMALL_STATUSES.items():
        assert _cell(html, f'[data-testid=subscriber-status] td[data-status="{status}"]') == str(count)
    # Each figure says what it counts: "now" beside "ever" no longer reads as a contradiction.
    assert _cell(html, "[data-testid=confirmation-rate]") == "10 of 13 (77%)"
    assert _cell(html, "[data-testid=kpi-active]") == "6 subscribers active now"
    assert _cell(html, "[data-testid=kpi-confirmation]") == "77% of all sign-ups ever confirmed"
    assert html.count("<rect") >= 12 and "<polyline" in html  # the growth chart's bars and line
    # Issues, with the progress bar on the issue being sent
    newer = small_today["newer"].id
    assert _cell(html, f'tr[data-issue="{newer}"] td[data-status="sent"]') == "2"
    assert _cell(html, f'tr[data-issue="{newer}"] td[data-status="pending"]') == "3"
    assert _cell(html, f'tr[data-issue="{small_today["older"].id}"] td[data-status="suppressed"]') == "1"
    assert _cell(html, "[data-testid=progress] .dash-progress-title") == "Sending weekly 2026-W48"
    assert _cell(html, "[data-testid=progress] .dash-progress-text") == "4 of 7 done (57.1%)"
    assert reverse("dashboard:retry_failed", args=[small_today["older"].id]) in html
    # Papers
    assert _cell(html, "[data-testid=kpi-papers]") == "6 papers new in the last 30 days"
    assert _cell(html, "[data-testid=papers-chart] figcaption") == "daily_json · 3 atom · 2 unknown · 1"
    assert _cell(html, '[data-testid=imports-table] tr[data-source="/data/daily.json"] [data-testid=import-error]') == (
        "HTTP 503 <b>Service Unavailable</b>"
    )
    # Topics
    assert _cell(html, 'tr[data-topic="large language models"]') == "large language models 6 8 2 1"
    # Failures
    assert "451 4.3.0 Try again later" in _cell(html, "[data-testid=failures]")


def test_text_from_users_and_feeds_is_escaped(client, staff, small_today):
    html = client.get(PAGE).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; attention" in html
    assert "<b>Service Unavailable</b>" not in html
    assert "&lt;active4@example.org&gt;" in html


def test_element_ids_on_the_page_are_unique(client, staff, small_today):
    import re

    ids = re.findall(r'\sid="([^"]+)"', client.get(PAGE).content.decode())

    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_the_page_renders_without_any_data(client, staff):
    response = client.get(PAGE)

    assert response.status_code == 200
    assert b"No issue has been planned yet." in response.content
    assert b"Nothing has been imported yet." in response.content


def test_the_admin_index_links_to_the_dashboard(client, staff):
    response = client.get("/admin/")

    assert response.status_code == 200
    assert f'href="{PAGE}"'.encode() in response.content


# Access --------------------------------------------------------------------------------


@pytest.fixture
def non_staff(client):
    user = get_user_model().objects.create_user("reader", "reader@example.org", "pw")
    client.force_login(user)
    return user


@pytest.mark.parametrize("url", [PAGE, *ACTION_URLS])
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_users_are_sent_to_the_login_page(client, url, method):
    response = getattr(client, method)(url, {"email": "x@example.org", "confirmed": "yes"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("url", [PAGE, *ACTION_URLS])
@pytest.mark.parametrize("method", ["get", "post"])
def test_logged_in_non_staff_users_are_sent_to_the_login_page(client, non_staff, url, method):
    from django.contrib.admin.models import LogEntry

    response = getattr(client, method)(url, {"email": "x@example.org", "confirmed": "yes"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    assert not LogEntry.objects.exists()


def test_inactive_staff_cannot_see_the_page(client):
    user = get_user_model().objects.create_user("gone", "gone@example.org", "pw", is_staff=True, is_active=False)
    client.force_login(user)

    assert client.get(PAGE).status_code == 302


# Charts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maximum", "expected"),
    [(0, (1.0, 1.0)), (3, (3.0, 1.0)), (7, (8.0, 2.0)), (95, (100.0, 25.0)), (1234, (1500.0, 500.0))],
)
def test_axis_scales_use_round_numbers(maximum, expected):
    assert nice_scale(maximum) == expected


def test_growth_chart_bars_and_line_scale_to_their_own_axes_when_signups_are_few():
    weeks = [
        selectors.WeekPoint(date(2026, 9, 7) + timedelta(weeks=n), signups=n, unsubscribes=0, total=100 + n * 10)
        for n in range(12)
    ]

    chart = growth_chart(weeks)

    assert len(chart.bars) == 12 and len(chart.dots) == 12
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert tallest.title.startswith("week of 23 Nov: 11 sign-ups")
    assert chart.bars[0].height == 0
    assert chart.dots[-1].y < chart.dots[0].y  # growing: the line rises (SVG y grows downwards)
    assert [tick.label for tick in chart.y_ticks] == ["0", "100", "200", "300"]
    assert [tick.label for tick in chart.y2_ticks] == ["0", "5", "10", "15"]
    assert (chart.y_title, chart.y2_title) == ("subscribers (line)", "sign-ups per week (bars)")


def test_growth_chart_has_one_axis_when_signups_and_total_are_alike():
    """Issue 24: two y-axes with the same 0-6 scale."""
    weeks = [
        selectors.WeekPoint(date(2026, 9, 7) + timedelta(weeks=n), signups=n % 3, unsubscribes=0, total=n // 2)
        for n in range(12)
    ]

    chart = growth_chart(weeks)

    assert chart.y2_ticks == [] and chart.y_title == chart.y2_title == ""
    assert [tick.label for tick in chart.y_ticks] == ["0", "2", "4", "6"]
    two = next(bar for bar in chart.bars if bar.title.startswith("week of 14 Sep: 1 sign-up"))
    one_subscriber_high = chart.plot_bottom - next(dot.y for dot in chart.dots if ": 1 subscribers" in dot.title)
    assert two.height == pytest.approx(one_subscriber_high, abs=0.2)  # one person is as high as a bar or a dot
    assert [label for _, label in chart.legend] == ["Subscribers", "New sign-ups per week"]


def test_papers_chart_stacks_sources_per_day_and_lumps_the_rest_as_other():
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]
    sources = ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]
    counts = {day: {} for day in days}
    counts[days[-1]] = {source: 1 for source in sources}
    papers = selectors.PaperImports(days=days, sources=sources, counts=counts, total=7)

    chart = papers_chart(papers)

    assert [label for _, label in chart.legend] == ["s1 · 1", "s2 · 1", "s3 · 1", "s4 · 1", "s5 · 1", "other · 2"]
    assert len(chart.bars) == 6
    assert chart.bars[-1].title == "30 Nov: 2 from other"
    bottoms = [round(bar.y + bar.height, 1) for bar in chart.bars]
    assert bottoms[0] == chart.plot_bottom
    assert all(abs(bottoms[i + 1] - chart.bars[i].y) < 0.2 for i in range(5))  # stacked
