"""The public pages kept until the papers change.

Listing, paper and search pages, feeds and API answers are the same for everyone. Each is
kept in the shared cache (``CACHE_URL``) under its URL with the *pages version* it was made
at; the version changes when papers do (``pages.receivers``: an import's ``papers_stored``,
which carries upvote changes too, a paper saved or deleted by hand, new similar-papers
lists), so a kept page is served until then, at most ``PAGE_KEEP_SECONDS`` (what depends on
the clock: the decay of the week going on, the tabs' "today"). ``PAGE_CACHE_SECONDS`` (0: no
page is kept) is how long browsers and proxies may keep one.

``pages.middleware.PublicPageCacheMiddleware`` serves a kept page before the session,
CSRF and authentication middleware run: one cache read (the version and the page
together), about a millisecond of CPU (``bench/README.md``, site_load).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils.cache import patch_cache_control
from django.utils.module_loading import import_string

from digestsite import cache as shared_cache

logger = logging.getLogger(__name__)

VERSION_KEY = "pages:version"
PAGE_PREFIX = "pages:page:"


def public_page(view=None, *, seconds: int | None = None, guard=None):
    """Mark a view's GET answers as the same for everyone: 200 answers get ``Cache-Control:
    public`` for ``seconds`` (``PAGE_CACHE_SECONDS`` by default) and the middleware keeps
    them until the papers change. ``guard(request)`` is true when a request must not be
    answered from the cache (over its rate limit: the view then answers it)."""
    if view is None:
        return functools.partial(public_page, seconds=seconds, guard=guard)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        browsers = settings.PAGE_CACHE_SECONDS if seconds is None else seconds
        if request.method == "GET" and response.status_code == 200 and browsers and settings.PAGE_CACHE_SECONDS:
            patch_cache_control(response, public=True, max_age=browsers)
            response.public_page = Mark(guard)
        return response

    return wrapper


class Kept(NamedTuple):
    """A kept answer: the version it was made at, what to send, and the guard to check (its
    dotted path). Stored as a plain tuple of plain values: a release that renames this
    class or a guard still reads the pages kept before it."""

    version: int
    status: int
    headers: list
    content: bytes
    guard: str

    @classmethod
    def of(cls, value) -> Kept | None:
        if isinstance(value, tuple) and len(value) == len(cls._fields) and isinstance(value[-1], str):
            return cls(*value)
        return None  # not a kept page, or one kept in an older form: made again

    def check(self, request) -> bool:
        """Whether the guard refuses this request an answer from the cache."""
        if not self.guard:
            return False
        guard = _guard(self.guard)
        return guard is None or guard(request)  # a guard gone in a release: the view answers


@functools.lru_cache(maxsize=64)
def _guard(path: str) -> Callable | None:
    try:
        return import_string(path)
    except ImportError:
        return None


class Mark(NamedTuple):
    """What ``public_page`` leaves on an answer the middleware may keep."""

    guard: Callable | None


def is_enabled() -> bool:
    return settings.PAGE_CACHE_SECONDS > 0


def page_key(request) -> str:
    """The cache key of a page: its absolute URL (feeds name their host), hashed."""
    url = request.build_absolute_uri()
    return PAGE_PREFIX + hashlib.blake2b(url.encode(), digest_size=16).hexdigest()


def lookup(key: str):
    """(version, kept page or None) in one cache read; the version is started when missing
    (None when the cache cannot be read: nothing is then kept)."""
    try:
        found = cache.get_many([VERSION_KEY, key])
    except Exception:  # the cache is down: the page is made and not kept (one warning, not two)
        logger.warning("cache unreadable", exc_info=True)
        return None, None
    version = found.get(VERSION_KEY)
    if version is None:
        version = _start_version()
    kept = Kept.of(found.get(key))
    return version, (kept if kept is not None and kept.version == version else None)


def keep(key: str, version, response) -> None:
    """Keep an answer ``public_page`` marked, made at ``version`` (its headers and body),
    unless it set a cookie or varies by one: those are not the same for everyone."""
    marked = getattr(response, "public_page", None)
    if version is None or marked is None or response.status_code != 200 or response.streaming or response.cookies:
        return
    if "cookie" in response.get("Vary", "").lower():
        return
    guard = f"{marked.guard.__module__}.{marked.guard.__qualname__}" if marked.guard else ""
    if guard and _guard(guard) is not marked.guard:  # not found by its name (a lambda): never kept
        return
    kept = (version, response.status_code, list(response.items()), response.content, guard)
    shared_cache.set(key, kept, settings.PAGE_KEEP_SECONDS)


def _start_version():
    """A version from the clock, so that a version lost with the cache (evicted, flushed)
    never comes back to one older pages were kept at."""
    try:
        cache.add(VERSION_KEY, time.time_ns(), None)
        return cache.get(VERSION_KEY)
    except Exception:
        logger.warning("cache unreadable", exc_info=True)
        return None


def bump() -> None:
    """Every kept page is out of date (the papers changed)."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # no version yet (or evicted): a new one from the clock
        cache.set(VERSION_KEY, time.time_ns(), None)
    except Exception:
        logger.warning("cache unwritable: kept pages stay until PAGE_KEEP_SECONDS", exc_info=True)


def bump_on_commit() -> None:
    """Once the change is committed: a page made before it would otherwise be kept as new."""
    transaction.on_commit(bump, robust=True)


def version() -> int | None:
    """The current pages version (for keys of things kept with the pages, like searches)."""
    value = shared_cache.get(VERSION_KEY)
    return value if value is not None else _start_version()
