"""The signup page and preview under load: what is cached, where, and what stays exact.

Cache tests run on the real Redis (``TEST_REDIS_URL``, as production's ``CACHE_URL``);
they fail, never skip, when it is not there.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client, override_settings

from ranking import semantic
from ranking.api import rank_topics
from subscriptions import previews
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_cache(settings, clean_redis, redis_url):
    """Django's default cache on the test Redis, as in production (CACHE_URL=redis://...)."""
    settings.CACHES = {"default": {"BACKEND": "digestsite.cache.RedisCache", "LOCATION": redis_url}}
    assert cache.set("probe", 1) is None and cache.get("probe") == 1
    return clean_redis


@pytest.fixture
def fresh_query_cache(monkeypatch):
    """An empty in-process embedding cache, as in a process that just started."""
    monkeypatch.setattr(semantic, "_query_cache", type(semantic._query_cache)())


@pytest.fixture
def papers(make_paper):
    make_paper("Diffusion models for video generation", "We train diffusion models on video.", upvotes=30)
    make_paper("Graph neural networks for molecules", "Message passing on molecular graphs.", upvotes=20)
    make_paper("Protein folding with language models", "Protein structure prediction.", upvotes=10)
    make_paper("Old diffusion paper", "diffusion", days_old=30, upvotes=99)


def counting_rank_topics(monkeypatch):
    """Wrap the real ranking to count how often the preview asks it."""
    calls = []
    real = previews.rank_topics

    def rank_topics(queries, **kwargs):
        calls.append(list(queries))
        return real(queries, **kwargs)

    monkeypatch.setattr(previews, "rank_topics", rank_topics)
    return calls


# --- Preview answers ---------------------------------------------------------------------


def test_preview_is_what_the_digest_ranks_for_a_new_subscriber(papers, redis_cache):
    since = previews.week_start()
    expected = rank_topics(["diffusion models", "graph neural networks"], since=since, limit=10)
    assert expected, "the corpus must match something"

    first = previews.preview_papers(["Diffusion Models", "graph neural networks"])
    again = previews.preview_papers(["Diffusion Models", "graph neural networks"])  # from the cache

    as_rows = [(r.paper.title, r.paper.url, r.why) for r in expected]
    assert [(p.title, p.url, p.why) for p in first] == as_rows
    assert again == first


def test_preview_answers_are_cached_per_normalised_topic_set_in_redis(papers, redis_cache, monkeypatch):
    calls = counting_rank_topics(monkeypatch)

    first = previews.preview_papers(["Diffusion Models"])
    same_words = previews.preview_papers(["  diffusion   MODELS "])  # the stored form is the same
    assert first == same_words and len(calls) == 1
    assert any(key.startswith(b":1:preview:v1:") for key in redis_cache.keys("*")), "the answer is in Redis"

    previews.preview_papers(["diffusion models", "protein folding"])  # another set: ranked
    previews.preview_papers(["diffusion models"], ["Ann Lee"])  # authors are part of the question
    assert len(calls) == 3


def test_a_cached_preview_expires(papers, redis_cache, settings, monkeypatch):
    settings.PREVIEW_CACHE_SECONDS = 1
    calls = counting_rank_topics(monkeypatch)
    previews.preview_papers(["diffusion models"])
    time.sleep(1.2)
    previews.preview_papers(["diffusion models"])
    assert len(calls) == 2


def test_preview_works_when_the_cache_is_down(papers, monkeypatch, fresh_query_cache):
    nobody_listens = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    calls = counting_rank_topics(monkeypatch)
    with override_settings(CACHES={"default": nobody_listens}):
        titles = [p.title for p in previews.preview_papers(["diffusion models"])]
        vectors = semantic.embed_queries(["an unseen topic while redis is down"])
    assert titles[0] == "Diffusion models for video generation"
    assert vectors.shape == (1, semantic.DIMENSIONS) and len(calls) == 1


# --- Topic embeddings shared between processes ----------------------------------------------


def test_a_topic_is_encoded_once_then_read_from_redis(redis_cache, fresh_query_cache, monkeypatch):
    encoded = []
    real_encode = semantic.encode
    monkeypatch.setattr(semantic, "encode", lambda texts: encoded.append(list(texts)) or real_encode(texts))

    vector = semantic.embed_queries(["sparse attention for protein design"])[0]
    assert encoded == [["sparse attention for protein design"]]
    keys = [k.decode() for k in redis_cache.keys("*")]
    assert [k for k in keys if k.startswith(f":1:semantic:{semantic.MODEL_NAME}:")], keys

    semantic._query_cache.clear()  # another process: nothing in its memory
    again = semantic.embed_queries(["sparse attention for protein design"])[0]
    assert len(encoded) == 1 and np.array_equal(vector, again)


def test_another_process_reuses_the_embedding(redis_cache, redis_url, fresh_query_cache):
    """A real second process (as another web worker) finds the vector in Redis and
    never loads the model."""
    text = "long tail topic typed by someone else"
    vector = semantic.embed_queries([text])[0]
    script = (
        "import django, hashlib; django.setup()\n"
        "from ranking import semantic\n"
        "def refuse(texts): raise SystemExit('encoded again')\n"
        "semantic.encode = refuse\n"
        f"print(hashlib.sha256(semantic.embed_queries([{text!r}])[0].tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "digestsite.test_settings", "CACHE_URL": redis_url}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == hashlib.sha256(vector.tobytes()).hexdigest()


def test_one_encode_at_a_time_and_the_same_new_topic_is_encoded_once(redis_cache, fresh_query_cache, monkeypatch):
    running, peak, encoded = [0], [0], []
    lock = threading.Lock()

    def slow_encode(texts):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            encoded.extend(texts)
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return np.ones((len(texts), semantic.DIMENSIONS), dtype=np.float32) / np.sqrt(semantic.DIMENSIONS)

    monkeypatch.setattr(semantic, "encode", slow_encode)
    texts = ["same new topic"] * 4 + [f"other topic {i}" for i in range(4)]
    threads = [threading.Thread(target=semantic.embed_queries, args=([t],)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1
    assert sorted(encoded) == sorted(set(texts)), "each text encoded once, whichever thread asked first"


# --- Protecting the page from previews ------------------------------------------------------


def test_previews_rank_one_at_a_time_per_process(redis_cache, monkeypatch):
    running, peak = [0], [0]
    lock = threading.Lock()

    def slow_rank(queries, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return []

    monkeypatch.setattr(previews, "rank_topics", slow_rank)
    threads = [threading.Thread(target=previews.preview_papers, args=([f"topic {i}"],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


@pytest.fixture
def slot_taken():
    """Another request of this process is ranking a preview."""
    assert previews.preview_slots.acquire(timeout=5)
    yield
    previews.preview_slots.release()


def test_a_preview_that_cannot_start_in_time_is_503_not_a_queue(client, settings, papers, slot_taken):
    settings.PREVIEW_WAIT_SECONDS = 0.05
    started = time.perf_counter()
    response = client.get("/preview.json", {"topics": "diffusion models"})
    assert time.perf_counter() - started < 2
    assert response.status_code == 503
    assert response.json() == {"error": "busy"}
    assert response["Retry-After"] == "1" and "no-store" in response["Cache-Control"]


def test_a_cached_preview_is_served_while_the_slot_is_taken(client, settings, papers):
    first = client.get("/preview.json", {"topics": "diffusion models"})
    assert first.status_code == 200
    settings.PREVIEW_WAIT_SECONDS = 0.05
    with_slot_taken = previews.preview_slots.acquire(timeout=5)
    try:
        again = client.get("/preview.json", {"topics": "Diffusion models\n"})
    finally:
        previews.preview_slots.release()
    assert with_slot_taken and again.status_code == 200 and again.json() == first.json()


def test_the_no_javascript_preview_says_busy(client, settings, papers, slot_taken):
    settings.PREVIEW_WAIT_SECONDS = 0.05
    response = client.post("/", {"topics": "diffusion models", "action": "preview", "timezone": "UTC"})
    assert response.status_code == 503
    assert "The preview is busy right now" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_the_signup_page_makes_no_query_once_trending_is_cached(client, papers, django_assert_num_queries):
    first = client.get("/subscribe/")
    assert first.status_code == 200
    with django_assert_num_queries(0):
        second = client.get("/subscribe/")
    html = second.content.decode()
    assert "Diffusion models for video generation" in html  # trending, from the cache
    assert "Old diffusion paper" not in html  # not this week's
    assert html.count("<option value=") > 300 and '<option value="Europe/Berlin">' in html


def test_trending_is_shared_through_redis(papers, redis_cache, django_assert_num_queries):
    first = previews.trending_papers()
    with django_assert_num_queries(0):
        assert previews.trending_papers() == first
    titles = [p.title for p in first]
    assert titles[:2] == ["Diffusion models for video generation", "Graph neural networks for molecules"]


def test_csrf_stays_per_visitor_and_works(papers, django_capture_on_commit_callbacks):
    """Nothing of the page that differs per visitor is cached: each gets a token of their
    own that matches their cookie, and a signup with it goes through."""
    pages = []
    for _ in range(2):
        visitor = Client(enforce_csrf_checks=True)
        response = visitor.get("/subscribe/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)
        pages.append((visitor, token, response.cookies[django_settings.CSRF_COOKIE_NAME].value))
    (ada, ada_token, ada_cookie), (bob, bob_token, bob_cookie) = pages
    assert ada_token != bob_token and ada_cookie != bob_cookie

    form = {"email": "ada@example.org", "topics": "diffusion models", "frequency": "weekly", "weekday": "0"}
    form["timezone"] = "UTC"
    assert ada.post("/", {**form, "csrfmiddlewaretoken": bob_token}).status_code == 403  # not someone else's
    with django_capture_on_commit_callbacks(execute=True):
        response = ada.post("/", {**form, "csrfmiddlewaretoken": ada_token})
    assert response.status_code == 200 and b"Check your inbox" in response.content
    assert Subscriber.objects.get().email == "ada@example.org"


def test_preview_json_carries_what_the_page_shows(client, papers):
    data = json.loads(client.get("/preview.json", {"topics": "diffusion models\ngraph neural networks"}).content)
    assert data["topics"] == ["diffusion models", "graph neural networks"]
    assert {p["title"] for p in data["papers"]} >= {
        "Diffusion models for video generation",
        "Graph neural networks for molecules",
    }


def test_the_preview_says_what_it_is_for_in_words():
    from subscriptions.previews import summary

    assert summary(3, ["video understanding"]) == "3 papers for video understanding."
    assert summary(1, ["a", "b"], ["Mira Okonkwo"]) == "1 paper for a, b or by Mira Okonkwo."
    assert summary(2, [], [], 1) == "2 papers like your example paper."
    assert summary(2, ["a"], ["Mira Okonkwo"], 2) == "2 papers for a, by Mira Okonkwo or like your example papers."
    assert summary(0, ["a"], [], 1) == (
        "No strong matches for a or like your example paper this week: we send only papers that match well. "
        "Broader words bring more."
    )
    assert summary(0, [], ["Mira Okonkwo"]) == "No papers this week by Mira Okonkwo yet. A topic or two brings more."
