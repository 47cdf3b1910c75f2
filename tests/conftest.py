"""Fixtures shared by the whole suite.

Services (Redis, PostgreSQL), the browser and SpamAssassin are requirements, not
options: a test that needs one fails with a clear message when it is missing; it
never skips.
"""

import os
import shutil

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Django DB + sync Playwright

# The ranking corpus and its two modes serve the ranking, digests and subscriptions tests.
pytest_plugins = ["tests.ranking_corpus"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def redis_url():
    """URL of a reachable Redis database reserved for tests (flushed per test that asks)."""
    import redis
    from django.conf import settings

    url = settings.TEST_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable ({exc}); start it (see .ci/run)")
    return url


@pytest.fixture
def clean_redis(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def redis_cache(settings, clean_redis, redis_url):
    """The cache as in production: Redis (the test database of it, flushed), no page held
    in this process from before."""
    from pages import cache as page_cache

    settings.CACHES = {"default": {"BACKEND": "digestsite.cache.RedisCache", "LOCATION": redis_url}}
    page_cache.forget_local()
    yield redis_url
    page_cache.forget_local()


@pytest.fixture(scope="session")
def spamassassin_bin():
    path = shutil.which("spamassassin")
    if not path:
        pytest.fail("spamassassin is missing: apt-get install spamassassin (see .ci/run)")
    return path


@pytest.fixture(autouse=True)
def _no_pages_held_in_memory():
    """Pages a web process held for an earlier test (``pages.cache``) are not this test's."""
    from pages import cache as page_cache

    page_cache.forget_local()


@pytest.fixture(autouse=True)
def _isolated_outbox(settings, tmp_path):
    """Each test writes its outbox (the embedded mail backend's folder) somewhere of its own."""
    settings.OUTBOX_DIR = tmp_path / "outbox"


@pytest.fixture
def own_cache(settings, request):
    """A fresh in-memory cache per test (the dashboard caches finished issues' counts)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": request.node.nodeid}
    }
