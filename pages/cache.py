"""The public pages kept until the papers change.

Listing, paper and search pages, feeds and API answers are the same for everyone. Each is
kept in the shared cache (``CACHE_URL``) under its URL with the *pages version* it was made
at; the version changes when papers do (``pages.receivers``: an import's ``papers_stored``,
which carries upvote changes too, a paper saved or deleted by hand, new similar-papers
lists), so a kept page is served until then, at most ``PAGE_KEEP_SECONDS`` (what depends on
the clock: the decay of the week going on, the tabs' "today"). A past day's page
(``for_day``) outlives a change that did not touch its day (``pages.day_marks``). ``PAGE_CACHE_SECONDS`` (0: no
page is kept) is how long browsers and proxies may keep one.

``pages.middleware.PublicPageCacheMiddleware`` serves a kept page before the session,
CSRF and authentication middleware run: one cache read (the version and the page
together), about a millisecond of CPU (``bench/README.md``, site_load).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.urls import URLResolver, get_resolver
from django.utils.cache import patch_cache_control
from django.utils.module_loading import import_string

from digestsite import cache as shared_cache
from pages import day_marks

logger = logging.getLogger(__name__)

VERSION_KEY = "pages:version"
PAGE_PREFIX = "pages:page:"


def public_page(view=None, *, seconds: int | None = None, guard=None, shared: bool = True):
    """Mark a view's GET answers as the same for everyone: 200 answers get ``Cache-Control:
    public`` for ``seconds`` (``PAGE_CACHE_SECONDS`` by default) and the middleware keeps
    them until the papers change. ``guard(request)`` is true when a request must not be
    answered from the cache (over its rate limit: the view then answers it). ``shared=False``:
    kept in the web process's memory only, for pages too many to keep them all in Redis
    for the hour, each asked for rarely (a paper page)."""
    if view is None:
        return functools.partial(public_page, seconds=seconds, guard=guard, shared=shared)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        browsers = settings.PAGE_CACHE_SECONDS if seconds is None else seconds
        if request.method == "GET" and response.status_code == 200 and browsers and settings.PAGE_CACHE_SECONDS:
            patch_cache_control(response, public=True, max_age=browsers)
            response.public_page = Mark(guard, shared, getattr(response, "public_page_day", ""))
        return response

    wrapper.public_page_shared = shared  # copied onto the decorators above it: never_shared()
    return wrapper


def for_day(response, day):
    """Mark ``response`` as the page of one past ``day`` that has papers: it shows that
    day's papers and its neighbouring days only, so it is kept through changes of other
    days (``pages.day_marks``)."""
    response.public_page_day = day.isoformat()
    return response


class Kept(NamedTuple):
    """A kept answer: the version it was made at, what to send, the guard to check (its
    dotted path), the day it shows (``for_day``; "" for any other page) and when it was
    made (``time.time()``). Stored as a plain tuple of plain values: a release that renames
    this class or a guard still reads the pages kept before it."""

    version: int
    status: int
    headers: list
    content: bytes
    guard: str
    day: str
    made_at: float

    @classmethod
    def of(cls, value) -> Kept | None:
        if isinstance(value, tuple) and len(value) == len(cls._fields) and isinstance(value[4], str):
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
    shared: bool = True
    day: str = ""


def is_enabled() -> bool:
    return settings.PAGE_CACHE_SECONDS > 0


def page_key(request) -> str:
    """The cache key of a page: its absolute URL (feeds name their host), hashed."""
    url = request.build_absolute_uri()
    return PAGE_PREFIX + hashlib.blake2b(url.encode(), digest_size=16).hexdigest()


def never_shared(path: str) -> bool:
    """Whether ``path`` is a page of a view marked ``public_page(shared=False)``, by the URL
    patterns alone (the URL is not resolved): such a page is only ever kept in a process's
    memory, so one this process does not hold is made without a cache read that could never
    find it (a paper page's one round trip to Redis). A path an earlier pattern shadows
    would only be made where it could have been read."""
    return any(pattern.match(path) for pattern in _never_shared_patterns(get_resolver()))


@functools.lru_cache(maxsize=4)
def _never_shared_patterns(resolver) -> tuple[re.Pattern, ...]:
    return tuple(re.compile("^/" + regex) for regex in _unshared_regexes(resolver.url_patterns, ""))


def _unshared_regexes(patterns, prefix: str):
    """The full regexes of the URL patterns whose view is kept in the process only (an
    include's regex followed by its patterns', as Django's resolver joins them)."""
    for entry in patterns:
        regex = prefix + entry.pattern.regex.pattern.removeprefix("^")
        if isinstance(entry, URLResolver):
            yield from _unshared_regexes(entry.url_patterns, regex)
        elif getattr(entry.callback, "public_page_shared", True) is False:
            yield regex


def lookup(key: str, *, shared: bool = True):
    """(version, kept page or None): from this process's memory while its version is trusted
    (no cache read at all), else in one cache read; the version is started when missing
    (None when the cache cannot be read: nothing is then kept). A page that is not
    ``shared`` and not in this process's memory is not looked for in the cache."""
    version, generation = _local.trusted_version(), _local.generation
    if version is not None:
        kept = _current(key, _local.get(key), version, shared=False)
        if kept is not None or not shared:
            return version, kept
    try:
        found = cache.get_many([key] if version is not None else [VERSION_KEY, key])
    except Exception:  # the cache is down: the page is made and not kept (one warning, not two)
        logger.warning("cache unreadable", exc_info=True)
        return None, None
    if version is None:
        version = found.get(VERSION_KEY)
        if version is None:
            version = _start_version()
        _local.trust(version, generation)
    kept = _current(key, Kept.of(found.get(key)), version, shared=True)
    if kept is not None:
        _local.put(key, kept)
    return version, kept


def _current(key: str, kept: Kept | None, version, *, shared: bool) -> Kept | None:
    """``kept`` if it was made at ``version``, or is a day's page whose day has not changed
    since, made less than ``PAGE_KEEP_SECONDS`` ago (a release's new templates reach every
    page within that time): then kept again at ``version`` in this process, and in the
    cache if it came from there (``shared``), so that the marks are read once per page and
    process, and the cache's copy is written again once, not by every process that holds
    its own."""
    if kept is None or kept.version == version:
        return kept
    if not kept.day or kept.version > version:
        return None
    age = time.time() - kept.made_at
    if age >= settings.PAGE_KEEP_SECONDS or not day_marks.still_current(kept.day, kept.version, version):
        return None
    kept = kept._replace(version=version)
    if shared:
        shared_cache.set(key, tuple(kept), max(1, round(settings.PAGE_KEEP_SECONDS - age)))
    _local.put(key, kept)
    return kept


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
    kept = (version, response.status_code, list(response.items()), response.content, guard, marked.day, time.time())
    if marked.shared:
        shared_cache.set(key, kept, settings.PAGE_KEEP_SECONDS)
    _local.put(key, Kept(*kept))


def _start_version():
    """A version from the clock, so that a version lost with the cache (evicted, flushed)
    never comes back to one older pages were kept at."""
    try:
        cache.add(VERSION_KEY, time.time_ns(), None)
        version = cache.get(VERSION_KEY)
    except Exception:
        logger.warning("cache unreadable", exc_info=True)
        return None
    if version is not None:
        day_marks.begin(version)
    return version


def bump(days: Iterable = (day_marks.ALL,)) -> None:
    """Every kept page is out of date (the papers changed), but the pages of past days
    other than ``days`` (``day_marks.ALL``: every day; none: no day page shows what changed):
    in this process at once, in the others once they read the version again
    (``PAGE_VERSION_CHECK_SECONDS``). The days are marked between two moves of the version
    (``pages.day_marks`` says why)."""
    days = list(days)
    version = _move_version()
    if days and version is not None:
        day_marks.mark(days, version)
        _move_version()
    _local.distrust()


def _move_version():
    """The new pages version, or None when the cache cannot be written."""
    try:
        return cache.incr(VERSION_KEY)
    except ValueError:  # no version yet (or evicted): a new one from the clock
        version = time.time_ns()
        cache.set(VERSION_KEY, version, None)
        day_marks.begin(version)
        return version
    except Exception:
        logger.warning("cache unwritable: kept pages stay until PAGE_KEEP_SECONDS", exc_info=True)
        return None


def bump_on_commit(days: Iterable = (day_marks.ALL,)) -> None:
    """Once the change is committed: a page made before it would otherwise be kept as new."""
    days = list(days)
    transaction.on_commit(lambda: bump(days), robust=True)


def version() -> int | None:
    """The current pages version (for keys of things kept with the pages, like searches)."""
    value = shared_cache.get(VERSION_KEY)
    return value if value is not None else _start_version()


class _LocalPages:
    """Kept pages in this process's memory as well, up to ``PAGE_LOCAL_MEGABYTES`` (least
    recently served first out), and the pages version it last read, trusted for
    ``PAGE_VERSION_CHECK_SECONDS``: a kept page is then served without a cache read, which
    was most of what one cost (a round trip to Redis, a home page's 70 KB copied and
    unpickled, and the GIL given up and waited for twice: ``bench/README.md``, site_load).
    Another process's import is seen here within that time; this process's own at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, Kept] = OrderedDict()
        self._bytes = 0
        self._version = None
        self._read_at = 0.0
        self.generation = 0  # moves on each distrust: a version read before it is not trusted

    def trusted_version(self):
        seconds = settings.PAGE_VERSION_CHECK_SECONDS
        if self._version is None or seconds <= 0 or time.monotonic() - self._read_at >= seconds:
            return None
        return self._version

    def trust(self, version, generation: int) -> None:
        """Trust ``version``, read when ``generation`` was current: not if a bump of this
        process came in between (the version read may be the one before it)."""
        with self._lock:
            if generation == self.generation:
                self._version, self._read_at = version, time.monotonic()

    def distrust(self) -> None:
        with self._lock:
            self.generation += 1
            self._version = None

    def get(self, key: str) -> Kept | None:
        """The page kept here under ``key``, whatever its version (``_current`` checks it)."""
        with self._lock:
            kept = self._pages.get(key)
            if kept is not None:
                self._pages.move_to_end(key)
            return kept

    def put(self, key: str, kept: Kept) -> None:
        limit = settings.PAGE_LOCAL_MEGABYTES * 1024 * 1024
        if len(kept.content) > limit // 8:  # a few pages of that size would fill it: not kept here
            return
        with self._lock:
            if key in self._pages:
                self._forget(key)
            self._pages[key] = kept
            self._bytes += len(kept.content)
            while self._bytes > limit:
                self._forget(next(iter(self._pages)))

    def _forget(self, key: str) -> None:
        self._bytes -= len(self._pages.pop(key).content)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._bytes = 0
        self.distrust()


_local = _LocalPages()


def forget_local() -> None:
    """Forget the pages and the version this process holds (the next lookup reads the cache)."""
    _local.clear()
