"""Atom feeds and the JSON API: for feed readers and integrators."""

import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


def entries(response):
    root = ET.fromstring(response.content)  # noqa: S314 (our own feed)
    return root, [(e.findtext(f"{ATOM}title"), e.findtext(f"{ATOM}summary")) for e in root.iter(f"{ATOM}entry")]


def test_trending_feed_carries_the_latest_days_newest_first(client, papers):
    response = client.get("/feeds/trending.atom")
    assert response["Content-Type"].startswith("application/atom+xml")
    root, items = entries(response)
    assert root.findtext(f"{ATOM}title") == "Paper Digest: trending papers"
    assert [title for title, _ in items] == [
        "Attention in O(n logn) Time for Long Context Language Models",  # maths as Unicode for feed readers
        "Long Video Understanding with Sparse Frame Sampling",
        "Speech Recognition for Low-Resource Languages",
        "Video Generation with Latent Diffusion",  # the 11th; the 12th has none
    ]
    assert "O(n^2)" in items[0][1] and "$" not in items[0][1]
    link = next(root.iter(f"{ATOM}entry")).find(f"{ATOM}link").get("href")
    assert link == f"http://testserver/papers/{papers['2603.10002'].pk}/"


def test_feeds_and_api_have_etags_and_cache_control(client, papers):
    for url in ("/feeds/trending.atom", "/feeds/search.atom?q=video", "/api/papers?q=video"):
        first = client.get(url)
        assert first.status_code == 200
        assert "public" in first["Cache-Control"] and "max-age=" in first["Cache-Control"]
        again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
        assert again.status_code == 304, url
        assert again.content == b""


def test_search_feed_lists_matches_newest_first_and_needs_a_query(client, papers, settings):
    settings.SEARCH_CACHE_SECONDS = 0
    from datetime import timedelta

    from django.utils import timezone

    from papers.models import Paper
    from ranking.api import embed_papers

    fresh = Paper.objects.create(
        key="fresh",
        title="Video Understanding at Scale",
        abstract="Video understanding for long videos.",
        first_seen_at=timezone.now() - timedelta(hours=1),
    )
    embed_papers([fresh])
    root, items = entries(client.get("/feeds/search.atom", {"q": "video understanding"}))
    assert [title for title, _ in items] == ["Video Understanding at Scale"]  # March's are over a month old
    assert "video understanding" in root.findtext(f"{ATOM}title")
    assert client.get("/feeds/search.atom").status_code == 400
    assert client.get("/feeds/search.atom", {"q": "x" * 301}).status_code == 400


def test_api_searches_with_the_fields_integrators_need(client, papers):
    data = client.get("/api/papers", {"q": "video understanding", "limit": 1}).json()
    [paper] = data["papers"]
    fields = {"id", "arxiv_id", "title", "authors", "abstract", "published", "date", "upvotes", "url", "score"}
    assert set(paper) == fields
    assert paper["arxiv_id"] == "2603.10001"
    assert paper["date"] == "2026-03-13"  # the day it is listed under (``date=``)
    assert paper["authors"] == ["Mei Tanaka", "Omar Haddad"]
    assert paper["published"].startswith("2026-03-13T09:00:00")
    assert paper["url"] == f"http://testserver/papers/{paper['id']}/"
    assert paper["score"] > 0


def test_api_lists_a_day_by_upvotes_without_a_query(client, papers):
    data = client.get("/api/papers", {"date": "2026-03-09"}).json()
    assert [p["arxiv_id"] for p in data["papers"]] == ["2603.07001", "2603.07002"]
    assert "score" not in data["papers"][0]
    latest = client.get("/api/papers").json()
    assert len(latest["papers"]) == 3
    within = client.get("/api/papers", {"q": "video", "date": "2026-03-11"}).json()
    assert [p["arxiv_id"] for p in within["papers"]] == ["2603.09001"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"date": "2026-13-01"}, "date"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"q": "x" * 301}, "q"),
    ],
)
def test_api_answers_a_bad_parameter_with_a_json_400(client, papers, params, field):
    response = client.get("/api/papers", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert field in response.json()["fields"] and response.json()["error"].startswith("bad parameter")


def test_api_is_rate_limited(client, papers, settings):
    settings.API_RATE_PER_IP = "2/m"
    codes = [client.get("/api/papers").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.get("/api/papers").json() == {"error": "too many requests"}
