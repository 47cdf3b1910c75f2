"""Public pages are kept until the papers change (``pages.cache``): served from the cache
before the rest of the middleware, and never out of date after an import."""

import pytest

from pages import cache as page_cache
from papers.importers.base import PaperRecord
from papers.services import upsert_papers
from tests.pages.conftest import titles

pytestmark = pytest.mark.django_db


def _import(records, capture):
    """An import as the importers run it, with what waits for its commit run too."""
    with capture(execute=True):
        upsert_papers(records, source="test")


def test_a_kept_home_page_changes_as_soon_as_an_import_commits(
    client, papers, django_capture_on_commit_callbacks, django_assert_num_queries
):
    before = client.get("/").content.decode()
    assert "Friday, 13 March 2026" in before
    with django_assert_num_queries(0):
        assert client.get("/").content.decode() == before  # kept
    new = PaperRecord(title="Sparse Mixture of Experts at Scale", arxiv_id="2603.20001", announced_on="2026-03-16")
    _import([new], django_capture_on_commit_callbacks)
    after = client.get("/").content.decode()
    assert "Monday, 16 March 2026" in after and "Sparse Mixture of Experts at Scale" in after


def test_new_upvotes_reorder_a_kept_day_at_once(client, papers, django_capture_on_commit_callbacks):
    day = "/papers/date/2026-03-13/"
    assert titles(client.get(day).content.decode(), papers)[-1] == "Speech Recognition for Low-Resource Languages"
    _import(
        [PaperRecord(title="Speech Recognition for Low-Resource Languages", arxiv_id="2603.10003", upvotes=500)],
        django_capture_on_commit_callbacks,
    )
    assert titles(client.get(day).content.decode(), papers)[0] == "Speech Recognition for Low-Resource Languages"


def test_a_paper_edited_by_hand_shows_at_once(client, papers, django_capture_on_commit_callbacks):
    paper = papers["2603.10001"]
    client.get(paper.get_absolute_url())
    with django_capture_on_commit_callbacks(execute=True):
        paper.title = "Long Video Understanding, Revised"
        paper.save()
    assert "Long Video Understanding, Revised" in client.get(paper.get_absolute_url()).content.decode()


def test_a_kept_page_has_the_headers_it_was_made_with_and_no_cookie(client, papers, django_assert_num_queries):
    first = client.get("/papers/date/2026-03-11/")
    with django_assert_num_queries(0):
        again = client.get("/papers/date/2026-03-11/")
    assert again.content == first.content
    for header in ("Content-Type", "Content-Security-Policy", "X-Frame-Options", "Cache-Control"):
        assert again[header] == first[header], header
    assert "public" in again["Cache-Control"] and "max-age=60" in again["Cache-Control"]
    assert not again.cookies


def test_pages_made_at_an_older_version_are_not_served(client, papers, django_assert_num_queries):
    client.get("/papers/date/2026-03-11/")
    page_cache.bump()
    with django_assert_num_queries(2):  # made again
        client.get("/papers/date/2026-03-11/")


def test_a_kept_search_still_counts_against_the_rate_limit(client, papers, settings):
    settings.SEARCH_RATE_PER_IP = "2/m"
    assert client.get("/search", {"q": "video"}).status_code == 200
    assert _kept("/search?q=video").guard == "pages.views.search_over_limit"  # by name: plain values only
    assert client.get("/search", {"q": "video"}).status_code == 200  # kept, and counted
    assert client.get("/search", {"q": "video"}).status_code == 429


def test_a_kept_api_answer_still_counts_against_the_rate_limit(client, papers, settings):
    settings.API_RATE_PER_IP = "1/m"
    assert client.get("/api/papers", {"q": "video"}).status_code == 200
    assert client.get("/api/papers", {"q": "video"}).status_code == 429


def test_a_search_finds_papers_imported_after_it_was_made(client, papers, django_capture_on_commit_callbacks):
    assert "Sparse Mixture" not in client.get("/search", {"q": "mixture of experts"}).content.decode()
    new = PaperRecord(
        title="Sparse Mixture of Experts at Scale",
        abstract="A mixture of experts routes each token to two experts.",
        arxiv_id="2603.20001",
        announced_on="2026-03-16",
    )
    _import([new], django_capture_on_commit_callbacks)
    assert "Sparse Mixture of Experts at Scale" in client.get("/search", {"q": "mixture of experts"}).content.decode()


def _kept(url: str):
    from django.core.cache import cache
    from django.test import RequestFactory

    return page_cache.Kept.of(cache.get(page_cache.page_key(RequestFactory().get(url))))


def test_only_get_answers_of_public_pages_are_kept(client, papers):
    client.head("/papers/date/2026-03-11/")
    assert _kept("/papers/date/2026-03-11/") is None
    for url in ("/subscribe/", "/papers/date/2026-13-01/", "/feeds/search.atom"):
        client.get(url)
        assert _kept(url) is None, url  # not public, not found, refused
    client.get("/papers/date/2026-03-11/")
    assert _kept("/papers/date/2026-03-11/").status == 200


def test_kept_pages_on_redis_as_in_production(client, papers, settings, clean_redis, redis_url):
    settings.CACHES = {"default": {"BACKEND": "digestsite.cache.RedisCache", "LOCATION": redis_url}}
    first = client.get("/papers/date/2026-03-11/")
    assert _kept("/papers/date/2026-03-11/").content == first.content
    assert client.get("/papers/date/2026-03-11/").content == first.content
    before = _kept("/papers/date/2026-03-11/").version
    page_cache.bump()
    assert page_cache.version() > before
    assert client.get("/papers/date/2026-03-11/").content == first.content
    assert _kept("/papers/date/2026-03-11/").version == page_cache.version()  # made again: every day was marked
    clean_redis.flushdb()  # the version lost with everything: a new one from the clock, never an older one
    assert page_cache.version() > before


def test_no_page_is_kept_when_page_caching_is_off(client, papers, settings, django_assert_num_queries):
    settings.PAGE_CACHE_SECONDS = 0
    first = client.get("/papers/date/2026-03-11/")
    assert "public" not in first.get("Cache-Control", "")
    with django_assert_num_queries(2):
        client.get("/papers/date/2026-03-11/")


def test_pages_are_made_as_usual_when_the_cache_is_down(client, papers, settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "digestsite.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    for _ in range(2):
        response = client.get("/papers/date/2026-03-11/")
        assert response.status_code == 200 and "Video Generation with Latent Diffusion" in response.content.decode()
    assert "cache unreadable" in caplog.text


def test_a_host_not_allowed_is_refused_before_any_page_is_looked_up(client, papers):
    client.get("/papers/date/2026-03-11/")  # kept for testserver
    assert client.get("/papers/date/2026-03-11/", HTTP_HOST="evil.example").status_code == 400


def test_a_kept_page_whose_guard_is_gone_is_answered_by_the_view(client, papers):
    from django.core.cache import cache
    from django.test import RequestFactory

    client.get("/search", {"q": "video"})
    key = page_cache.page_key(RequestFactory().get("/search?q=video"))
    version, status, headers, _content, guard, day, made_at = page_cache.Kept.of(cache.get(key))
    cache.set(key, (version, status, headers, b"kept", guard, day, made_at), 60)
    page_cache.forget_local()  # this process holds nothing: the shared cache's copy is read
    assert client.get("/search", {"q": "video"}).content == b"kept"
    cache.set(key, (version, status, headers, b"kept", "pages.views.renamed_in_a_release", day, made_at), 60)
    page_cache.forget_local()
    assert b"Video" in client.get("/search", {"q": "video"}).content  # made by the view


def test_a_kept_page_is_served_from_the_process_memory_without_a_cache_read(
    client, papers, monkeypatch, django_assert_num_queries
):
    first = client.get("/papers/date/2026-03-11/")
    reads = []
    monkeypatch.setattr(page_cache.cache, "get_many", lambda keys: reads.append(keys) or {})
    with django_assert_num_queries(0):
        again = client.get("/papers/date/2026-03-11/")
    assert again.content == first.content and reads == []


def test_another_process_import_shows_once_the_version_is_read_again(client, papers, settings, monkeypatch):
    """A bump made elsewhere (the cache's version moved, this process not told) is seen once
    this process's trust in its version runs out: PAGE_VERSION_CHECK_SECONDS."""
    from django.core.cache import cache

    settings.PAGE_VERSION_CHECK_SECONDS = 30
    clock = [1000.0]
    monkeypatch.setattr(page_cache.time, "monotonic", lambda: clock[0])
    client.get("/papers/date/2026-03-11/")
    with monkeypatch.context() as elsewhere:  # another web process's import: this one is not told
        elsewhere.setattr(page_cache._local, "distrust", lambda: None)
        page_cache.bump()
    made = []
    monkeypatch.setattr(page_cache, "keep", lambda key, version, response: made.append(version))
    client.get("/papers/date/2026-03-11/")
    assert made == []  # still trusted: served from memory
    clock[0] += 30
    client.get("/papers/date/2026-03-11/")
    assert made == [cache.get(page_cache.VERSION_KEY)]  # read again, made again at the new version


def test_the_memory_a_process_gives_kept_pages_is_bounded(client, papers, settings):
    settings.PAGE_LOCAL_MEGABYTES = 1
    big = page_cache.Kept(1, 200, [], b"x" * 100_000, "", "", 0.0)
    for number in range(15):
        page_cache._local.put(f"k{number}", big)
    held = [number for number in range(15) if page_cache._local.get(f"k{number}") is not None]
    assert held == list(range(5, 15))  # the ten newest: 1 MB
    assert (
        page_cache._current("k14", page_cache._local.get("k14"), 2, shared=False) is None
    )  # another version: not served


def test_paper_pages_are_kept_in_the_process_only(client, papers, django_assert_num_queries):
    """100,000 paper pages would fill Redis for the hour; each web process keeps the ones it
    was asked for."""
    url = papers["2603.10001"].get_absolute_url()
    first = client.get(url)
    assert _kept(url) is None
    with django_assert_num_queries(0):
        assert client.get(url).content == first.content


def test_a_paper_page_this_process_does_not_hold_is_made_without_a_cache_read(client, papers, monkeypatch):
    """Kept in the processes' memory only, a paper page is never in the shared cache: a
    process that does not hold it (it served other pages since) makes it at once."""
    url = papers["2603.10001"].get_absolute_url()
    first = client.get(url)
    client.get("/papers/date/2026-03-11/")  # the version is read and trusted
    page_cache._local._pages.clear()  # as another process that was never asked for it
    reads, made = [], []
    get_many = page_cache.cache.get_many

    def recorded(keys):
        reads.extend(key for key in keys if key.startswith((page_cache.PAGE_PREFIX, page_cache.VERSION_KEY)))
        return get_many(keys)

    monkeypatch.setattr(page_cache.cache, "get_many", recorded)
    keep = page_cache.keep
    monkeypatch.setattr(page_cache, "keep", lambda *args: made.append(args[0]) or keep(*args))
    again = client.get(url)
    assert reads == [] and len(made) == 1
    assert again.content == first.content
    page_cache._local._pages.clear()
    client.get("/papers/date/2026-03-11/")  # a shared page is looked for in the cache
    assert len(reads) == 1


def test_never_shared_knows_the_paper_pages_by_their_urls_alone():
    assert page_cache.never_shared("/papers/12/")
    for path in ("/", "/papers/", "/papers/12", "/papers/date/2026-03-11/", "/search", "/feeds/trending.atom"):
        assert not page_cache.never_shared(path), path


def test_a_version_read_before_this_process_bumped_it_is_not_trusted(client, papers):
    """A request that read the version just before an import of this process committed
    must not make the process trust the old version for PAGE_VERSION_CHECK_SECONDS."""
    generation = page_cache._local.generation
    old = page_cache.version()
    page_cache.bump()  # this process's own import, between the read and the trust
    page_cache._local.trust(old, generation)
    assert page_cache._local.trusted_version() is None
