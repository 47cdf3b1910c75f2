"""Django's cache as a shortcut that may fail: when it (Redis) is down, reads find
nothing and writes are dropped, each logged, and the caller computes as if uncached."""

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

logger = logging.getLogger(__name__)

LOCK_SECONDS = 30  # a computation's lock outlives a holder that died by this much at most
POLL_SECONDS = 0.025


class _ReusedClient(RedisCacheClient):
    """Django's Redis cache client makes a new ``redis.Redis`` for every call, and building
    one (its table of reply callbacks) cost a kept page a fifth of its CPU: one per pool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(index))
        return client


class RedisCache(DjangoRedisCache):
    """Django's Redis cache (``CACHE_URL=redis://``) with its clients reused."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClient


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
    """Store ``value`` for ``seconds`` (one command: ``set_many`` is a Redis pipeline)."""
    try:
        cache.set(key, value, seconds)
    except Exception:
        logger.warning("cache unwritable", exc_info=True)


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


def computed_once(key: str, compute: Callable[[], Any], seconds: float, *, wait: float = 10.0):
    """The value cached under ``key``, computed by one caller at a time across processes:
    the first to ask takes a lock (``key`` + ``:computing``, for ``LOCK_SECONDS``) and
    computes and stores it; the others asking meanwhile wait for it, reading the cache every
    ``POLL_SECONDS``, for at most ``wait`` seconds, then compute it themselves (a holder that
    died or is very slow). Without it, a search everyone asks for right after an import was
    ranked by every process asked for it before the first had finished: three times over in
    ``bench/site_load.py``. With the cache down, each caller computes."""
    lock = f"{key}:computing"
    try:
        first = cache.add(lock, 1, LOCK_SECONDS)
    except Exception:
        logger.warning("cache unreadable", exc_info=True)
        return compute()
    if not first:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            value = get(key)
            if value is not None:
                return value
    try:
        value = compute()
        set(key, value, seconds)
        return value
    finally:
        if first:
            delete(lock)
