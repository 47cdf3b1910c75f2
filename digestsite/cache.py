"""Django's cache as a shortcut that may fail: when it (Redis) is down, reads find
nothing and writes are dropped, each logged, and the caller computes as if uncached."""

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)


def get_many(keys) -> dict:
    """The cached values of ``keys`` that exist; {} when the cache is unreadable."""
    try:
        return cache.get_many(list(keys))
    except Exception:
        logger.warning("cache unreadable", exc_info=True)
        return {}


def get(key: str):
    """The cached value of ``key``, or None (also when the cache is unreadable)."""
    return get_many([key]).get(key)


def set(key: str, value, seconds: float) -> None:  # noqa: A001 (the cache's own verb)
    set_many({key: value}, seconds)


def set_many(values: dict, seconds: float) -> None:
    """Store ``values`` for ``seconds``; a cache that is down only makes the next read slower."""
    if not values:
        return
    try:
        cache.set_many(values, seconds)
    except Exception:
        logger.warning("cache unwritable", exc_info=True)


def delete(key: str) -> None:
    """Forget ``key``; with the cache down there is nothing to forget now (logged)."""
    try:
        cache.delete(key)
    except Exception:
        logger.warning("cache unwritable", exc_info=True)
