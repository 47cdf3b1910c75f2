"""Synthetic papers and subscribers, bulk inserted (call after ``_harness.setup_django``).

Every paper's title carries one of the shared head topics verbatim and one long-tail
phrase, and every subscriber follows at least one head topic, so every subscriber has
papers to receive: a missing email is then the pipeline's fault, not the data's.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bench.vocabulary import DOMAINS, FILLER, HEAD_TOPICS, METHODS, MODIFIERS, OBJECTS, long_tail_topic

EMAIL_DOMAIN = "bench.example.com"
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo"]
# Zipf-like popularity of the head topics: a few very common, most followed by a few.
_HEAD_WEIGHTS = [1 / (rank + 1) ** 1.1 for rank in range(len(HEAD_TOPICS))]


@contextlib.contextmanager
def cached_embeddings(folder):
    """Keep the sentence embeddings of the synthetic texts between runs (in ``folder``).

    Embedding is the importers' and the signup's work, not the pipeline's, and on two busy
    cores it takes minutes per run; the product's own code still computes whatever is new
    (``semantic.encode`` is wrapped, nothing else changes).
    """
    try:
        import numpy as np

        from ranking import semantic
    except ImportError:
        yield
        return
    path = folder / f"{semantic.MODEL_NAME}.npz"
    cache: dict[str, object] = {}
    if path.exists():
        with np.load(path) as stored:
            cache = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    known = len(cache)
    original = semantic.encode

    def encode(texts):
        keys = [hashlib.sha1(t.encode(), usedforsecurity=False).hexdigest() for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in cache}
        if missing:
            cache.update(zip(missing, original(list(missing.values())), strict=True))
        return np.stack([cache[k] for k in keys]).astype(np.float32) if keys else original(texts)

    semantic.encode = encode
    try:
        yield
    finally:
        semantic.encode = original
        if len(cache) > known:
            folder.mkdir(parents=True, exist_ok=True)
            np.savez(path, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))


def email_for(prefix: str, index: int) -> str:
    return f"{prefix}{index:06d}@{EMAIL_DOMAIN}"


def create_papers(count: int, *, now: datetime, seed: int = 1, days: int = 6, embed: bool = True) -> int:
    """``count`` papers first seen in the ``days`` before ``now``, with their embeddings
    computed as the importers do."""
    from papers.models import Paper

    rng = random.Random(seed)
    papers = []
    for index in range(count):
        head = HEAD_TOPICS[index % len(HEAD_TOPICS)]
        tail = long_tail_topic(rng)
        title = f"{rng.choice(MODIFIERS).capitalize()} {head}: {tail}"
        sentences = [
            f"{rng.choice(FILLER)} {rng.choice(OBJECTS)} for {head} in {rng.choice(DOMAINS)}.",
            f"Building on {rng.choice(METHODS)} and {rng.choice(HEAD_TOPICS)}, the approach is {tail}.",
            f"{rng.choice(FILLER)} {rng.choice(OBJECTS)} on {rng.choice(DOMAINS)} with {rng.choice(METHODS)}.",
            f"Code and data: <b>released</b> & documented for {rng.choice(HEAD_TOPICS)}.",
        ]
        arxiv_id = f"2611.{index:05d}"
        papers.append(
            Paper(
                key=arxiv_id,
                arxiv_id=arxiv_id,
                title=title,
                abstract=" ".join(sentences),
                authors=[f"Author {rng.randrange(5000)}", f"Author {rng.randrange(5000)}"],
                categories=["cs.LG"],
                published_at=now - timedelta(days=rng.uniform(0, days)),
                first_seen_at=now - timedelta(days=rng.uniform(0.01, days)),
                upvotes=rng.randrange(200),
                abs_url=f"https://arxiv.org/abs/{arxiv_id}",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
                source="bench",
            )
        )
    Paper.objects.bulk_create(papers, batch_size=1000)
    if embed:
        from ranking.api import embed_papers

        embed_papers(papers)  # what the importers do (a no-op without the model)
    return count


def embed_topics() -> int:
    """Store the sentence embedding of every topic that has none, through the ranking's own
    code, as a week of previews and earlier issues would have; returns how many."""
    from ranking.api import store_topic_embeddings
    from subscriptions.models import Topic

    return store_topic_embeddings(Topic.objects.values_list("query", flat=True))


def _topic_ids(queries: set[str]) -> dict[str, int]:
    from subscriptions.models import Topic

    existing = dict(Topic.objects.filter(query__in=queries).values_list("query", "id"))
    missing = [Topic(query=q) for q in queries if q not in existing]
    Topic.objects.bulk_create(missing, batch_size=2000)
    existing.update(Topic.objects.filter(query__in=[t.query for t in missing]).values_list("query", "id"))
    return existing


def topics_for(rng: random.Random) -> list[str]:
    """One person's topics: 1-5 shared ones, and often one specific long-tail phrase."""
    count = min(5, 1 + int(rng.expovariate(0.8)))
    chosen = set(rng.choices(HEAD_TOPICS, weights=_HEAD_WEIGHTS, k=count))
    if rng.random() < 0.4:
        chosen.add(long_tail_topic(rng))
    return sorted(chosen)


def create_subscribers(
    count: int,
    *,
    now: datetime,
    prefix: str = "sub",
    seed: int = 2,
    start: int = 0,
    status: str = "active",
    frequency: str = "weekly",
    chunk: int = 5000,
    topics=None,
) -> int:
    """``count`` confirmed subscribers whose weekly slot (local weekday and hour) is ``now``.

    ``topics(rng, index)`` may choose each person's topics (default ``topics_for``).
    """
    from subscriptions.models import Subscriber, Subscription

    rng = random.Random(seed)
    choose = topics or (lambda r, _i: topics_for(r))
    for offset in range(start, start + count, chunk):
        indices = range(offset, min(offset + chunk, start + count))
        people, wanted = [], []
        for index in indices:
            zone = TIMEZONES[index % len(TIMEZONES)]
            local = now.astimezone(ZoneInfo(zone))
            people.append(
                Subscriber(
                    email=email_for(prefix, index),
                    status=status,
                    frequency=frequency,
                    weekday=local.weekday(),
                    send_hour=local.hour,
                    timezone=zone,
                    created_at=now - timedelta(days=30),
                    confirmed_at=now - timedelta(days=29),
                )
            )
            wanted.append(choose(rng, index))
        Subscriber.objects.bulk_create(people, batch_size=2000)
        ids = _topic_ids({q for qs in wanted for q in qs})
        links = [
            Subscription(subscriber_id=person.id, topic_id=ids[query])
            for person, queries in zip(people, wanted, strict=True)
            for query in queries
        ]
        Subscription.objects.bulk_create(links, batch_size=5000)
    return count


def topic_mix(count: int, seed: int = 2) -> dict[str, int]:
    """How many distinct topics ``count`` subscribers follow, and how shared they are (for the report)."""
    rng = random.Random(seed)
    followers: dict[str, int] = {}
    for _ in range(count):
        for query in topics_for(rng):
            followers[query] = followers.get(query, 0) + 1
    return {
        "distinct": len(followers),
        "followed_by_one": sum(1 for n in followers.values() if n == 1),
        "subscriptions": sum(followers.values()),
    }


def populate(*, papers: int, subscribers: int, now: datetime, seed: int, warm_topics: bool = True) -> dict:
    """Papers (with embeddings, as imported) and subscribers; ``warm_topics`` also stores every
    topic's embedding, as the weeks before an issue would have. Returns seconds per step."""
    import time

    from bench._harness import CACHE_DIR

    timings = {}
    with cached_embeddings(CACHE_DIR):
        started = time.perf_counter()
        create_papers(papers, now=now, seed=seed)
        timings["papers"] = time.perf_counter() - started
        started = time.perf_counter()
        create_subscribers(subscribers, now=now, seed=seed + 1)
        timings["subscribers"] = time.perf_counter() - started
        started = time.perf_counter()
        timings["topics_embedded"] = embed_topics() if warm_topics else 0
        timings["topics"] = time.perf_counter() - started
    analyze()
    return timings


def analyze(*, vacuum: bool = False) -> None:
    """Give PostgreSQL's planner statistics of the new rows, as autovacuum does within a
    minute of a bulk load. Without them it guessed a third of the subscriptions for a
    batch's hundred readers and scanned every subscription and topic (60 ms per batch at
    100,000 subscribers, against 0.6 ms with the index it then picks). ``vacuum``: also
    what autovacuum does soon after an issue has rewritten every delivery row twice, so
    that it does not share the cores with the measurement that follows."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")


def now_utc() -> datetime:
    return datetime.now(tz=ZoneInfo("UTC")).replace(microsecond=0)
