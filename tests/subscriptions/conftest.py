import pytest
from django.core.cache import cache
from django.utils import timezone

from papers.models import Paper


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the cache; every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_paper(db):
    counter = iter(range(1, 10_000))

    def make(title, abstract="", *, days_old=1, upvotes=0, url=None):
        n = next(counter)
        return Paper.objects.create(
            key=f"2611.{n:05d}",
            title=title,
            abstract=abstract,
            first_seen_at=timezone.now() - timezone.timedelta(days=days_old),
            upvotes=upvotes,
            abs_url=url if url is not None else f"https://arxiv.org/abs/2611.{n:05d}",
        )

    return make
