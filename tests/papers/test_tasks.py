"""The scheduled fetch task, run eagerly: it is about the retry logic, not the pipeline."""

import pytest
from django.conf import settings as django_settings

from papers.models import ImportRun, Paper
from papers.tasks import SourcesUnreachable, fetch_sources
from tests.papers import feeds

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager(settings):
    """Eager tasks whose retries run at once, as a worker would run them later (with
    propagation on, an eager retry would surface as an exception instead)."""
    from digestsite.celery import app

    assert app.conf.task_always_eager
    settings.PAPER_FETCH_RETRIES = 0  # the task's retries are under test here
    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = propagates


def test_the_beat_schedule_names_this_task():
    schedule = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert fetch_sources.name == "papers.tasks.fetch_sources" in schedule


def test_a_network_error_is_retried_for_that_source_only(feed_server, settings):
    settings.PAPER_SOURCES = [
        feed_server.add("/good.json", feeds.daily_json(feeds.samples(2))),
        feed_server.add("/flaky.rss", feeds.rss(feeds.samples(4)[2:]), fail_first=2),
    ]
    assert fetch_sources.delay().state == "SUCCESS"
    assert feed_server.routes["/good.json"].hits == 1
    assert feed_server.routes["/flaky.rss"].hits == 3
    assert Paper.objects.count() == 4
    flaky_runs = ImportRun.objects.filter(source=settings.PAPER_SOURCES[1]).order_by("id")
    assert [run.status for run in flaky_runs] == ["failed", "failed", "ok"]


def test_bad_input_is_not_retried(feed_server, settings):
    settings.PAPER_SOURCES = [feed_server.add("/broken.json", b"[{")]
    assert fetch_sources.delay().state == "SUCCESS"
    assert feed_server.routes["/broken.json"].hits == 1
    assert ImportRun.objects.get().status == "failed"


def test_gives_up_after_the_last_retry(feed_server, settings):
    settings.PAPER_SOURCES = [feed_server.add("/down.json", b"", status=503)]
    result = fetch_sources.delay()
    assert result.state == "FAILURE"
    assert isinstance(result.result, SourcesUnreachable) and "the server answered HTTP 503" in str(result.result)
    assert feed_server.routes["/down.json"].hits == 1 + fetch_sources.max_retries


def test_backoff_stays_below_the_visibility_timeout(feed_server, settings, monkeypatch):
    countdowns = []
    original = fetch_sources.retry

    def spy(*args, **kwargs):
        countdowns.append(kwargs["countdown"])
        return original(*args, **kwargs)

    monkeypatch.setattr(fetch_sources, "retry", spy)
    settings.PAPER_SOURCES = [feed_server.add("/down.json", b"", status=503)]
    assert fetch_sources.delay().state == "FAILURE"
    assert len(countdowns) == fetch_sources.max_retries + 1
    assert all(0 <= c <= settings.CELERY_VISIBILITY_TIMEOUT - 60 for c in countdowns)


def test_a_long_source_list_is_spread_over_retries(feed_server, settings):
    settings.PAPER_FETCH_TIMEOUT, settings.CELERY_TASK_SOFT_TIME_LIMIT = 5, 15  # one source per run
    settings.PAPER_SOURCES = [feed_server.add(f"/{n}.json", feeds.daily_json(feeds.samples(n + 1))) for n in range(3)]
    assert fetch_sources.delay().state == "SUCCESS"
    assert [route.hits for route in feed_server.routes.values()] == [1, 1, 1]
    assert Paper.objects.count() == 3
