"""A past day's kept page outlives an import that did not touch its day (``pages.day_marks``):
served again without a query, while the days an import changed, and the days beside them,
are made again at once."""

from datetime import date, timedelta

import pytest
from django.db import DatabaseError, transaction

from pages import cache as page_cache
from pages import day_marks, selectors
from papers.importers.base import PaperRecord
from papers.models import Paper
from papers.services import upsert_papers
from ranking.signals import neighbours_stored
from tests.pages.conftest import at, titles

pytestmark = pytest.mark.django_db

DAY_9, DAY_11, DAY_13 = "/papers/date/2026-03-09/", "/papers/date/2026-03-11/", "/papers/date/2026-03-13/"


def _import(records, capture):
    with capture(execute=True):
        upsert_papers(records, source="test")


@pytest.mark.parametrize("cache_kind", ["in process", "redis"])
def test_an_import_of_one_day_keeps_the_other_days_pages(
    cache_kind, client, papers, request, django_capture_on_commit_callbacks, django_assert_num_queries
):
    if cache_kind == "redis":
        request.getfixturevalue("redis_cache")
    kept = client.get(DAY_9).content
    new_upvotes = PaperRecord(title="Speech Recognition for Low-Resource Languages", arxiv_id="2603.10003", upvotes=9)
    _import([new_upvotes], django_capture_on_commit_callbacks)
    with django_assert_num_queries(0):  # the marks are read from the cache, the page is not made
        assert client.get(DAY_9).content == kept
    page_cache.forget_local()  # another process: the shared copy, kept again at the new version
    with django_assert_num_queries(0):
        assert client.get(DAY_9).content == kept


def test_a_day_page_is_kept_through_imports_no_longer_than_page_keep_seconds(
    client, papers, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """A release's new templates reach every day page within PAGE_KEEP_SECONDS, however
    many imports it is kept through."""
    clock = [1_000_000.0]
    monkeypatch.setattr(page_cache.time, "time", lambda: clock[0])
    client.get(DAY_9)
    clock[0] += settings.PAGE_KEEP_SECONDS - 1
    page_cache.bump(days=["2026-03-13"])
    made = []
    monkeypatch.setattr(page_cache, "keep", lambda key, version, response: made.append(key))
    client.get(DAY_9)
    assert made == []  # kept through the import
    clock[0] += 1
    page_cache.bump(days=["2026-03-13"])
    client.get(DAY_9)
    assert len(made) == 1  # made again: an hour old


def test_the_day_an_import_changed_is_made_again(client, papers, django_capture_on_commit_callbacks):
    speech = "Speech Recognition for Low-Resource Languages"
    assert titles(client.get(DAY_13).content.decode(), papers)[-1] == speech
    _import([PaperRecord(title=speech, arxiv_id="2603.10003", upvotes=500)], django_capture_on_commit_callbacks)
    assert titles(client.get(DAY_13).content.decode(), papers)[0] == speech


def test_a_new_day_changes_the_links_of_the_day_before_it(client, papers, django_capture_on_commit_callbacks):
    assert "Monday, 16 March 2026" not in client.get(DAY_13).content.decode()
    kept_11 = client.get(DAY_11).content
    new = PaperRecord(title="Sparse Mixture of Experts at Scale", arxiv_id="2603.20001", announced_on="2026-03-16")
    _import([new], django_capture_on_commit_callbacks)
    assert 'rel="next" href="/papers/date/2026-03-16/"' in client.get(DAY_13).content.decode()
    assert client.get(DAY_11).content == kept_11  # two days away: its links are the same


def test_a_paper_moved_to_its_announced_day_leaves_its_first_seen_day(
    client, papers, django_capture_on_commit_callbacks
):
    """First listed by the day it was first seen (the 11th), a paper a later feed dates
    (the 10th) moves: the 11th is now empty, and the 9th's next day is the 10th."""
    assert "Video Generation with Latent Diffusion" in client.get(DAY_11).content.decode()
    assert 'rel="next" href="/papers/date/2026-03-11/"' in client.get(DAY_9).content.decode()
    dated = PaperRecord(
        title="Video Generation with Latent Diffusion", arxiv_id="2603.09001", announced_on="2026-03-10"
    )
    _import([dated], django_capture_on_commit_callbacks)
    assert "No papers on this day" in client.get(DAY_11).content.decode()
    assert 'rel="next" href="/papers/date/2026-03-10/"' in client.get(DAY_9).content.decode()


def test_papers_dated_in_the_import_transaction_after_it_show_on_their_day(
    client, papers, django_capture_on_commit_callbacks
):
    """As ``load_sample_papers`` does: imported, then given the time they were first seen."""
    assert "Graph Networks for Weather" not in client.get(DAY_9).content.decode()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        upsert_papers([PaperRecord(title="Graph Networks for Weather", arxiv_id="2603.30001")], source="test")
        Paper.objects.filter(arxiv_id="2603.30001").update(first_seen_at=at(9, 18))
    assert "Graph Networks for Weather" in client.get(DAY_9).content.decode()


def test_an_import_whose_days_cannot_be_found_makes_every_day_again(
    client, papers, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    client.get(DAY_9)

    def broken(ids):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(selectors, "listing_days", broken)
    new = PaperRecord(title="Sparse Mixture of Experts at Scale", arxiv_id="2603.20001", announced_on="2026-03-16")
    _import([new], django_capture_on_commit_callbacks)
    made = []
    monkeypatch.setattr(page_cache, "keep", lambda key, version, response: made.append(key))
    client.get(DAY_9)
    assert len(made) == 1 and "every day page is made again" in caplog.text


def test_a_paper_edited_by_hand_makes_every_day_again(client, papers, django_capture_on_commit_callbacks):
    client.get(DAY_9)
    paper = papers["2603.07001"]
    with django_capture_on_commit_callbacks(execute=True):
        paper.title = "Legged Locomotion, Revised"
        paper.save()
    assert "Legged Locomotion, Revised" in client.get(DAY_9).content.decode()


def test_new_similar_papers_keep_the_day_pages(client, papers, django_capture_on_commit_callbacks):
    kept = client.get(DAY_9).content
    with django_capture_on_commit_callbacks(execute=True):
        neighbours_stored.send(sender=None, paper_ids=[papers["2603.10001"].pk])
    assert page_cache.version() != page_cache.Kept.of(_shared(DAY_9)).version  # other pages are made again
    assert client.get(DAY_9).content == kept


def test_pages_kept_before_the_marks_began_are_made_again(client, papers, django_assert_num_queries):
    """Marks lost with the cache (evicted, flushed) no longer say which days changed: every
    day page kept before is made again, never served on a record that is gone."""
    from django.core.cache import cache

    client.get(DAY_9)
    page_cache.bump(days=["2026-03-13"])
    cache.delete(day_marks.KEY)
    page_cache.bump(days=())
    with django_assert_num_queries(2):
        client.get(DAY_9)


def test_pages_of_empty_days_and_weeks_are_made_again_after_any_import(client, papers, django_assert_num_queries):
    for url in ("/papers/date/2026-03-12/", "/papers/week/2026-W11/"):
        client.get(url)
        page_cache.bump(days=())
        with django_assert_num_queries(2 if "date" in url else 3):
            client.get(url)


@pytest.mark.parametrize("cache_kind", ["in process", "redis"])
def test_a_mark_only_ever_moves_up(cache_kind, request):
    """Two imports may write their marks in either order: the later version stays."""
    if cache_kind == "redis":
        request.getfixturevalue("redis_cache")
    day_marks.mark(["2026-03-09"], 20)
    day_marks.mark(["2026-03-09"], 10)
    assert not day_marks.still_current("2026-03-09", 20, 30)
    assert day_marks.still_current("2026-03-09", 21, 30)
    assert not day_marks.still_current("2026-03-09", 9, 30)  # before the marks began


def test_a_backfill_of_many_days_marks_every_day():
    day_marks.mark(["2025-01-01"], 5)
    assert day_marks.still_current("2026-03-09", 6, 9)
    backfill = [date(2024, 1, 1) + timedelta(days=n) for n in range(day_marks.MAX_MARKED_DAYS + 1)]
    day_marks.mark(backfill, 8)
    assert not day_marks.still_current("2026-03-09", 6, 9)  # not among them, marked all the same
    assert day_marks.still_current("2026-03-09", 9, 10)


def _shared(url):
    from django.core.cache import cache
    from django.test import RequestFactory

    return cache.get(page_cache.page_key(RequestFactory().get(url)))
