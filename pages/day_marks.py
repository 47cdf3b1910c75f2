"""Which days changed since a kept day page was made, so that an import keeps the pages of
the days it did not touch.

Every change of the papers moves the pages version (``pages.cache.bump``), and a kept page
made at an older version is made again. A day's page (a past day with papers) shows only
that day's papers and the days before and after it that have papers, so an import that
brings today's papers and new upvotes for the last few days leaves the other 700 days'
pages as they were. Each change *marks* the days it touched with the version it made
obsolete; a day page kept at an older version is still served when its day, and every
day (``ALL``: a paper saved or deleted by hand), were last marked before it was made.

The marks live beside the pages in the shared cache: a Redis hash when ``CACHE_URL`` is
Redis (raised in a WATCH/MULTI transaction, so a mark only ever moves up whatever order
two imports write in), else a dict in this process's cache. They begin with a ``START``
mark, the version the pages version started at: when the marks are lost (evicted), every
page kept before they begin again is made again, never served on a change they no longer
record.

How a change is ordered (``pages.cache.bump``, after the commit): the version is moved to
``s``, the days are marked ``s``, the version is moved again. A page made at a version
above ``s`` was made after the first move, so after the commit; a page kept again (at
``s``) between the first move and the marks is stale from the second move on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import date

from django.core.cache import cache, caches

from digestsite.cache import RedisCache

logger = logging.getLogger(__name__)

KEY = "pages:day-marks"
ALL = "*"
START = "~start"
# An import of more days than this (a backfill) marks every day: one mark, not thousands.
MAX_MARKED_DAYS = 62

_lock = threading.Lock()  # the dict's read-modify-write, for caches other than Redis


def mark(days: Iterable[date | str], version: int) -> None:
    """Record that ``days`` (``ALL``: every day) changed, making pages kept at ``version``
    or before obsolete. A cache that cannot be written leaves kept day pages until they
    expire (``PAGE_KEEP_SECONDS``), as for every kept page."""
    names = {day if isinstance(day, str) else day.isoformat() for day in days}
    if len(names) > MAX_MARKED_DAYS:
        names = {ALL}
    if not names:
        return
    try:
        _store(names, int(version))
    except Exception:
        logger.warning("cache unwritable: day pages kept until PAGE_KEEP_SECONDS", exc_info=True)


def still_current(day: str, kept_at: int, version: int) -> bool:
    """Whether a page of ``day`` kept at version ``kept_at`` shows what the papers are at
    ``version`` (the current one): neither its day nor every day was marked at or after
    ``kept_at``. False when the marks cannot be read."""
    try:
        marks = _read((day, ALL, START))
    except Exception:
        logger.warning("cache unreadable", exc_info=True)
        return False
    start = marks.get(START)
    if start is None:  # lost (evicted): from now on they are complete
        begin(version)
        return False
    return kept_at >= start and kept_at > max(marks.get(day) or 0, marks.get(ALL) or 0)


def begin(version: int) -> None:
    """Start the marks at ``version`` (the pages version's first value) unless they have
    started: every change after it is marked."""
    try:
        _store(set(), int(version))
    except Exception:
        logger.warning("cache unwritable", exc_info=True)


def _redis():
    """(client, key) of the marks' hash when the cache is Redis, else None."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    key = backend.make_and_validate_key(KEY)
    return backend._cache.get_client(key, write=True), key


def _store(names: set[str], version: int) -> None:
    redis = _redis()
    if redis is None:
        with _lock:
            marks = cache.get(KEY) or {}
            cache.set(KEY, _raised(marks, names - {START}, version), None)
        return
    client, key = redis
    names = sorted(names | {START})

    def raise_marks(pipe):  # WATCH, read, MULTI, write: retried if another change wrote in between
        found = pipe.hmget(key, names)
        marks = {name: int(value) for name, value in zip(names, found, strict=True) if value is not None}
        pipe.multi()
        pipe.hset(key, mapping=_raised(marks, set(names) - {START}, version))

    client.transaction(raise_marks, key)


def _raised(marks: dict, names: set[str], version: int) -> dict:
    """``marks`` with ``names`` raised to ``version`` (never lowered) and a start."""
    marks = dict(marks)
    marks.setdefault(START, version)
    for name in names:
        marks[name] = max(marks.get(name, version), version)
    return marks


def _read(names: tuple[str, ...]) -> dict[str, int]:
    redis = _redis()
    if redis is not None:
        client, key = redis
        found = client.hmget(key, list(names))
        return {name: int(value) for name, value in zip(names, found, strict=True) if value is not None}
    marks = cache.get(KEY) or {}
    return {name: marks[name] for name in names if name in marks}
