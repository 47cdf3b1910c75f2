"""Kept day pages in production's shape: two uWSGI workers (``digestsite.web``) sharing
Redis as ``CACHE_URL`` over the PostgreSQL (or SQLite) test database, and an import made in
another process (this one). The pages of the days it changed are new in every worker at
once; an older day's page is still the one made before the import (``pages.day_marks``)."""

import os
import signal
import urllib.request
from datetime import UTC, datetime

import pytest

from pages import cache as page_cache
from papers.importers.base import PaperRecord
from papers.models import Paper
from papers.services import upsert_papers
from tests.e2e.test_pipeline import _database_url
from tests.site.test_web_server import _free_port, start_web

DAYS = ["2026-03-09", "2026-03-11", "2026-03-13"]


def _fetch(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as response:  # noqa: S310 (loopback)
        assert response.status == 200
        return response.read().decode()


@pytest.fixture
def web(transactional_db, redis_cache, settings, tmp_path):
    """``python -m digestsite.web``: two processes of one thread, the version read afresh
    on every request (no process trusts an old one)."""
    for number, day in enumerate(DAYS):
        seen = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
        Paper.objects.create(
            key=f"2603.0{number}001",
            arxiv_id=f"2603.0{number}001",
            title=f"Paper of {day}",
            abstract="An abstract.",
            first_seen_at=seen,
            updated_at=seen,
            upvotes=number,
        )
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "CACHE_"))},
        "DJANGO_SETTINGS_MODULE": "digestsite.settings",
        "DEBUG": "1",
        "SECRET_KEY": settings.SECRET_KEY,
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": _database_url(),
        "CACHE_URL": redis_cache,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "1",
        "PAGE_VERSION_CHECK_SECONDS": "0",
        "TIME_ZONE": settings.TIME_ZONE,
    }
    server = start_web(env, tmp_path / "web.log")
    try:
        yield port
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_an_import_changes_its_days_pages_in_every_worker_and_keeps_the_others(web):
    from django.core.cache import cache
    from django.test import RequestFactory

    def kept(day):
        request = RequestFactory().get(f"/papers/date/{day}/", HTTP_HOST=f"127.0.0.1:{web}")
        return page_cache.Kept.of(cache.get(page_cache.page_key(request)))

    before = {day: {_fetch(web, f"/papers/date/{day}/") for _ in range(6)} for day in DAYS}
    assert all(len(pages) == 1 for pages in before.values())  # the same page from both workers
    oldest = kept(DAYS[0])
    assert oldest is not None and oldest.day == DAYS[0]

    new = PaperRecord(title="Sparse Mixture of Experts at Scale", arxiv_id="2603.20001", announced_on="2026-03-16")
    upsert_papers([new], source="test")  # committed at once: its receivers mark the days

    for _ in range(6):  # whichever worker answers
        assert 'rel="next" href="/papers/date/2026-03-16/"' in _fetch(web, "/papers/date/2026-03-13/")
        assert "Sparse Mixture of Experts at Scale" in _fetch(web, "/papers/date/2026-03-16/")
        assert _fetch(web, f"/papers/date/{DAYS[0]}/") in before[DAYS[0]]
    again = kept(DAYS[0])
    assert again.made_at == oldest.made_at  # the page made before the import, not made again
    assert again.version == page_cache.version() != oldest.version  # kept again at the new version
