"""Queries per page, pinned: each page reads with a fixed number of queries, however many
papers a day has (``pages.selectors``)."""

import pytest
from django.db import connection

from papers.models import Paper
from ranking.api import embed_papers, store_neighbours
from tests.pages.conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowded(papers):
    """Many more papers on the fixtures' days: counts must not grow with them."""
    Paper.objects.bulk_create(
        Paper(
            key=f"more-{n}",
            title=f"Video paper {n}",
            abstract="video understanding",
            first_seen_at=at(9 + n % 5),
            upvotes=n,
        )
        for n in range(60)
    )
    embed_papers(list(Paper.objects.filter(key__startswith="more-")))  # as the importers leave them
    return papers


@pytest.mark.parametrize(
    "url, queries",
    [
        ("/", 3),  # the latest day, its papers, the day before (nothing comes after the latest)
        ("/papers/date/2026-03-11/", 2),  # papers; the days before and after (one query)
        ("/papers/date/2026-03-12/", 2),  # an empty day: the same two find the nearest days
        ("/papers/week/2026-W11/", 3),  # ids and votes, the hundred shown, the weeks around
        ("/papers/month/2026-03/", 3),
        ("/api/papers?date=2026-03-13", 1),
        ("/feeds/trending.atom", 2),
    ],
)
def test_listing_pages(client, crowded, django_assert_num_queries, url, queries):
    with django_assert_num_queries(queries):
        assert client.get(url).status_code == 200


def test_a_paper_page_is_one_query_with_its_neighbours_stored(client, crowded, django_assert_num_queries):
    store_neighbours(list(Paper.objects.values_list("id", flat=True)))  # as the import's task leaves them
    url = crowded["2603.10001"].get_absolute_url()
    with django_assert_num_queries(1):  # the paper, and the papers its stored list names
        first = client.get(url).content
    assert first.count(b'class="entry"') == 6 and b"Listed 13 March 2026" in first
    with django_assert_num_queries(0):  # the page itself, kept until the papers change
        assert client.get(url).content == first


def test_a_paper_page_without_stored_neighbours_searches_for_them(client, crowded, django_assert_num_queries, settings):
    url = crowded["2603.10001"].get_absolute_url()
    if connection.vendor == "postgresql":  # no stored list; the paper, its neighbours' embeddings, the six shown
        with django_assert_num_queries(4):
            first = client.get(url).content
    else:  # the paper index's fingerprint and build, the paper's embedding: not pinned
        first = client.get(url).content
    with django_assert_num_queries(0):  # the page itself, kept until the papers change
        assert client.get(url).content == first
    settings.PAGE_CACHE_SECONDS = 0
    with django_assert_num_queries(3):  # no stored list; the paper, its cached neighbours' display fields
        assert client.get(url).content == first


def test_a_search_is_a_fixed_number_of_queries(client, crowded, django_assert_num_queries, settings):
    # PostgreSQL: the candidates with every word, then (fewer than 200 here) those with any
    # word, each with what ranking and the page need. SQLite: the in-memory index's fingerprint
    # (its build happens once per process, here first) and the shown papers.
    client.get("/search", {"q": "speech"})
    with django_assert_num_queries(2):
        client.get("/search", {"q": "video understanding"})
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        client.get("/search", {"q": "robots"})  # one word: no second pass
    with django_assert_num_queries(0):  # the same page again, kept until the papers change
        client.get("/search", {"q": "video understanding"})
    settings.PAGE_CACHE_SECONDS = 0
    with django_assert_num_queries(1):  # the same search again: the cached ranking, the shown papers
        client.get("/search", {"q": "video understanding"})


def test_listing_pages_are_cached_for_everyone(client, crowded, django_assert_num_queries, settings):
    first = client.get("/papers/date/2026-03-11/")
    assert "max-age=60" in first["Cache-Control"]
    with django_assert_num_queries(0):
        again = client.get("/papers/date/2026-03-11/")
    assert again.content == first.content
    settings.PAGE_CACHE_SECONDS = 0
    with django_assert_num_queries(2):
        client.get("/papers/date/2026-03-11/")
