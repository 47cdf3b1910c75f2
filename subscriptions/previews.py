"""The signup page's live preview: the papers typed topics would bring this week, as
the digest ranks them for a new subscriber, and this week's most upvoted papers."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone as dj_timezone

from digestsite import cache as shared_cache
from papers.models import Paper
from ranking.api import floor_to_hour, rank_topics
from subscriptions import services

PREVIEW_DAYS = 7
PREVIEW_LIMIT = 10


@dataclass(frozen=True)
class PreviewPaper:
    title: str
    url: str
    why: str


class PreviewBusy(Exception):
    """No preview slot came free within ``PREVIEW_WAIT_SECONDS``: this process is ranking
    another preview and others were waiting before this one."""


# One preview ranks at a time per process. Ranking is CPU work under the GIL (and a new
# topic's encoding takes a core): more at once would not finish sooner, they would take
# the processor from the pages served by the other threads.
PREVIEW_CONCURRENCY = 1
preview_slots = threading.BoundedSemaphore(PREVIEW_CONCURRENCY)


def week_start():
    """Where "this week" starts, on the hour: the ranking's paper index is shared per
    hour (``floor_to_hour``), so are the cached answers."""
    return floor_to_hour(dj_timezone.now() - timedelta(days=PREVIEW_DAYS))


def _cache_key(kind: str, *parts) -> str:
    digest = hashlib.blake2b(json.dumps(parts, ensure_ascii=False).encode(), digest_size=16).hexdigest()
    return f"{kind}:v1:{digest}"


def _papers(rows) -> list[PreviewPaper]:
    return [PreviewPaper(*row) for row in rows]


def preview_papers(topics, authors=(), example_paper_ids=(), *, limit=PREVIEW_LIMIT) -> list[PreviewPaper]:
    """The papers these topics would bring this week, as the digest ranks them
    (``ranking.rank_topics``, as for a new subscriber).

    Answers are cached for ``PREVIEW_CACHE_SECONDS`` per normalised topic and author set
    (and hour of the week's window), in Django's cache: Redis in production, so one
    person's typing is ranked once for every web process. A miss waits at most
    ``PREVIEW_WAIT_SECONDS`` for this process's preview slot, then raises ``PreviewBusy``.
    """
    queries = services.clean_topics(topics)[: services.MAX_TOPICS]
    names = services.clean_authors(authors)[: services.MAX_FOLLOWED_AUTHORS]
    liked = [int(i) for i in example_paper_ids][:10]
    if not queries and not names and not liked:
        return []
    since = week_start()
    key = _cache_key("preview", queries, names, limit, since.isoformat(), *(["examples", *liked] if liked else []))
    rows = shared_cache.get(key)
    if rows is not None:
        return _papers(rows)
    slots = preview_slots
    if not slots.acquire(timeout=settings.PREVIEW_WAIT_SECONDS):
        raise PreviewBusy
    try:
        rows = shared_cache.get(key)  # the same words may have been ranked while this one waited
        if rows is None:
            ranked = rank_topics(queries, authors=names, since=since, limit=limit, example_paper_ids=liked)
            rows = [(r.paper.title, r.paper.url, r.why) for r in ranked]
            shared_cache.set(key, rows, settings.PREVIEW_CACHE_SECONDS)
    finally:
        slots.release()
    return _papers(rows)


def summary(count: int, topics, authors=(), example_count: int = 0) -> str:
    """The preview's status line: how many papers, for the topics, authors and example
    papers the reader gave ("3 papers for video understanding or like your example paper")."""
    wanted = [f"for {', '.join(topics)}"] if topics else []
    if authors:
        wanted.append(f"by {', '.join(authors)}")
    if example_count:
        wanted.append("like your example paper" + ("s" if example_count > 1 else ""))
    said = " or ".join([", ".join(wanted[:-1]), wanted[-1]] if len(wanted) > 1 else wanted)
    if count:
        return f"{count} paper{'' if count == 1 else 's'} {said}."
    if topics:
        return f"No strong matches {said} this week: we send only papers that match well. Broader words bring more."
    return f"No papers this week {said} yet. A topic or two brings more."


def trending_papers(*, limit=5) -> list[PreviewPaper]:
    """This week's most upvoted papers: what the preview shows before any topic is typed.
    The same for everyone, so cached for ``TRENDING_CACHE_SECONDS``."""
    since = week_start()
    key = _cache_key("trending", limit, since.isoformat())
    rows = shared_cache.get(key)
    if rows is None:
        papers = (
            Paper.objects.filter(first_seen_at__gte=since)
            .order_by("-upvotes", "-first_seen_at")
            .only("title", "page_url", "abs_url", "pdf_url", "upvotes")[:limit]
        )
        rows = [(p.title, p.url, f"{p.upvotes} upvotes") for p in papers]
        shared_cache.set(key, rows, settings.TRENDING_CACHE_SECONDS)
    return _papers(rows)
