"""Imports over HTTP from a feed server on 127.0.0.1, and the scheduled fetch of sources."""

import logging

import pytest

from papers import services
from papers.models import ImportRun, Paper
from papers.services import FetchFailed, ImportFailed, ImportResult
from tests.papers import feeds

pytestmark = pytest.mark.django_db

PAPERS = feeds.samples(3)


def test_each_format_from_a_url(feed_server):
    urls = [
        feed_server.add("/api/daily_papers", feeds.daily_json(PAPERS[:1]), content_type="application/json"),
        feed_server.add("/papers", feeds.html_with_props(feeds.samples(2)[1:]), content_type="text/html"),
        feed_server.add("/api/query", feeds.atom(PAPERS[2:]), content_type="application/atom+xml"),
        feed_server.add("/rss/cs.CL", feeds.rss(PAPERS), content_type="application/rss+xml"),
        feed_server.add("/page.txt", feeds.text_page(PAPERS).encode(), content_type="text/plain; charset=utf-8"),
    ]
    results = [services.import_source(url) for url in urls]
    # The text page has the same three papers (by title): one row each, whatever the source.
    assert [r.created for r in results] == [1, 1, 1, 0, 0]
    assert Paper.objects.count() == 3
    assert Paper.objects.get(key="2611.10000").page_url == f"{feed_server.base_url}/papers/2611.10000"
    assert list(ImportRun.objects.order_by("id").values_list("format", flat=True)) == [
        "daily-json",
        "html",
        "atom",
        "rss",
        "text",
    ]


def test_http_charset_is_used_for_text(feed_server):
    papers = feeds.samples(1)
    papers[0].title = "Señales débiles"
    url = feed_server.add(
        "/p.txt", feeds.text_page(papers).encode("latin-1"), content_type="text/plain; charset=latin-1"
    )
    services.import_source(url, fmt="text")
    assert Paper.objects.get().title == "Señales débiles"


def test_http_charset_mismatch_is_a_clear_error(feed_server):
    papers = feeds.samples(1)
    papers[0].title = "Señales débiles"
    body = feeds.text_page(papers).encode("latin-1")
    url = feed_server.add("/p.txt", body, content_type="text/plain; charset=utf-8")
    with pytest.raises(ImportFailed, match=rf"{url}: .*is not valid utf-8 \(declared charset\): byte 0xf1 at offset"):
        services.import_source(url)
    assert Paper.objects.count() == 0


def test_truncated_download_is_retried_then_reported(feed_server):
    body = feeds.daily_json(PAPERS)
    url = feed_server.add("/cut.json", body, truncate_to=len(body) // 2)
    with pytest.raises(FetchFailed, match=rf"^{url}: the download was cut short \(truncated\)"):
        services.import_source(url)
    assert feed_server.routes["/cut.json"].hits == 2  # PAPER_FETCH_RETRIES = 1 in these tests
    assert Paper.objects.count() == 0
    assert ImportRun.objects.get().status == "failed"


def test_network_errors_are_retried_with_backoff(feed_server, settings, monkeypatch):
    settings.PAPER_FETCH_RETRIES, settings.PAPER_FETCH_BACKOFF = 2, 0.5
    waits = []
    monkeypatch.setattr(services.time, "sleep", waits.append)
    url = feed_server.add("/flaky.json", feeds.daily_json(PAPERS), fail_first=2)
    assert services.import_source(url) == ImportResult(created=3)
    assert waits == [0.5, 1.0]


def test_server_errors_are_retried_client_errors_are_not(feed_server):
    down = feed_server.add("/down", b"oops", status=503)
    gone = feed_server.add("/gone", b"nope", status=404)
    with pytest.raises(FetchFailed, match="the server answered HTTP 503"):
        services.import_source(down)
    with pytest.raises(ImportFailed, match="the server answered HTTP 404") as caught:
        services.import_source(gone)
    assert not isinstance(caught.value, FetchFailed)
    assert (feed_server.routes["/down"].hits, feed_server.routes["/gone"].hits) == (2, 1)


def test_unreachable_host(settings):
    with pytest.raises(FetchFailed, match=r"http://127.0.0.1:9/feed: cannot connect"):
        services.import_source("http://127.0.0.1:9/feed")


def test_declared_oversized_body_is_refused_before_reading(feed_server, settings):
    settings.PAPER_MAX_BYTES = 4096
    url = feed_server.add("/big.json", b"[" + b" " * 5000 + b"]")
    with pytest.raises(ImportFailed, match=r"is larger than the 4096-byte limit \(PAPER_MAX_BYTES\): 5002 bytes"):
        services.import_source(url)


def test_a_20mb_stream_is_cut_off_without_reading_it_all(feed_server, settings):
    assert settings.PAPER_MAX_BYTES == 20 * 1024 * 1024
    url = feed_server.add("/endless", stream_bytes=200 * 1024 * 1024)
    with pytest.raises(ImportFailed, match=r"is larger than the 20971520-byte limit"):
        services.import_source(url)
    assert feed_server.routes["/endless"].sent < 60 * 1024 * 1024
    assert Paper.objects.count() == 0


def test_fetch_sources_imports_each_source_and_logs_a_line_each(feed_server, settings, tmp_path, caplog):
    page = tmp_path / "page.txt"
    page.write_text(feeds.text_page(feeds.samples(2)), encoding="utf-8")
    settings.PAPER_SOURCES = [
        feed_server.add("/api/daily_papers", feeds.daily_json(PAPERS)),
        "rss:" + feed_server.add("/rss", feeds.rss(PAPERS[:1])),
        f"text:{page}",
        feed_server.add("/broken.json", b"[{"),
        feed_server.add("/down", b"", status=502),
    ]
    with caplog.at_level(logging.INFO, logger="papers.services"):
        report = services.fetch_sources()
    assert report.results == {
        settings.PAPER_SOURCES[0]: ImportResult(created=3),
        settings.PAPER_SOURCES[1]: ImportResult(updated=1),  # the RSS feed adds categories
        settings.PAPER_SOURCES[2]: ImportResult(unchanged=2),  # the same papers by title: nothing new
    }
    assert set(report.failed) == set(settings.PAPER_SOURCES[3:])
    assert report.unreachable == [settings.PAPER_SOURCES[4]]
    assert "JSON ends early" in report.failed[settings.PAPER_SOURCES[3]]
    summaries = [r.getMessage() for r in caplog.records if "retrying" not in r.getMessage()]
    assert len(summaries) == 5
    assert (
        summaries[0] == f"paper source imported: {feed_server.base_url}/api/daily_papers (daily-json): "
        "created 3, updated 0, unchanged 0"
    )
    assert ImportRun.objects.filter(format="rss", status="ok").count() == 1

    again = services.fetch_sources()
    assert list(again.results.values()) == [
        ImportResult(unchanged=3),
        ImportResult(unchanged=1),
        ImportResult(unchanged=2),
    ]


def test_source_entries_may_name_their_format():
    assert services.parse_source_entry("rss:https://rss.arxiv.org/rss/cs.CL") == (
        "rss",
        "https://rss.arxiv.org/rss/cs.CL",
    )
    assert services.parse_source_entry("daily-json:/srv/x.json") == ("daily-json", "/srv/x.json")
    assert services.parse_source_entry("https://example.org/feed") == ("auto", "https://example.org/feed")
    assert services.parse_source_entry("/srv/html:odd/file") == ("auto", "/srv/html:odd/file")


def test_sources_that_do_not_fit_the_time_budget_are_postponed(feed_server, settings):
    settings.PAPER_FETCH_TIMEOUT = 5  # worst case per source: 10 s
    settings.PAPER_SOURCES = [feed_server.add(f"/{n}.json", feeds.daily_json(feeds.samples(n + 1))) for n in range(3)]
    report = services.fetch_sources(time_budget=8)
    assert list(report.results) == settings.PAPER_SOURCES[:1]  # the first source always runs
    assert report.postponed == report.to_retry == settings.PAPER_SOURCES[1:]
    assert [route.hits for route in feed_server.routes.values()] == [1, 0, 0]


def test_no_retry_starts_that_would_overrun_the_budget(feed_server, settings):
    settings.PAPER_FETCH_TIMEOUT, settings.PAPER_FETCH_RETRIES = 5, 3
    url = feed_server.add("/down.json", b"", status=503)
    report = services.fetch_sources([url], time_budget=8)
    assert report.unreachable == [url]
    assert feed_server.routes["/down.json"].hits == 1
