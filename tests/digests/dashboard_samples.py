"""Data sets for the dashboard tests: a small one with known numbers, and a showcase.

``build_small`` makes a data set whose every dashboard figure is known (the tests
assert them); ``build_showcase`` makes a bigger, realistic one for the screenshot
and for checking that the query count does not grow with the data.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from digests.models import Delivery, Issue
from papers.models import ImportRun, Paper
from subscriptions.models import Feedback, Subscriber, Subscription, Topic

# A Thursday afternoon; its week starts on Monday 23 Nov 2026.
NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)

SMALL_STATUSES = {"active": 6, "pending": 3, "paused": 1, "unsubscribed": 2, "bounced": 1}


def _subscriber(email, status, created_at, *, confirmed=True, unsubscribed_at=None):
    return Subscriber(
        email=email,
        status=status,
        created_at=created_at,
        confirmed_at=created_at + timedelta(minutes=5) if confirmed else None,
        unsubscribed_at=unsubscribed_at,
    )


def build_small(now: datetime = NOW) -> dict:
    """13 subscribers, 2 issues, 7 papers, 3 import runs, 3 topics; every number known."""
    rows = []
    # Two active subscribers signed up long before the 12-week window, the rest in it.
    for i in range(SMALL_STATUSES["active"]):
        created = now - timedelta(weeks=20) if i < 2 else now - timedelta(days=i)  # 4 in this/last week
        rows.append(_subscriber(f"active{i}@example.org", "active", created))
    for i in range(SMALL_STATUSES["pending"]):
        rows.append(_subscriber(f"pending{i}@example.org", "pending", now - timedelta(hours=i + 1), confirmed=False))
    rows.append(_subscriber("paused0@example.org", "paused", now - timedelta(weeks=3)))
    for i in range(SMALL_STATUSES["unsubscribed"]):
        rows.append(
            _subscriber(
                f"unsub{i}@example.org",
                "unsubscribed",
                now - timedelta(weeks=30),
                unsubscribed_at=now - timedelta(days=1),  # both in this week
            )
        )
    rows.append(_subscriber("bounced0@example.org", "bounced", now - timedelta(weeks=5)))
    subscribers = {s.email: s for s in Subscriber.objects.bulk_create(rows)}

    llm = Topic.objects.create(query="large language models")
    gnn = Topic.objects.create(query="graph neural networks")
    Topic.objects.create(query="nobody follows this")
    xss = Topic.objects.create(query="<script>alert(1)</script> attention")
    follows = [(f"active{i}@example.org", llm) for i in range(6)]  # llm: 6 active
    follows += [("paused0@example.org", llm), ("pending0@example.org", llm)]  # llm: 8 in all
    follows += [("active0@example.org", gnn), ("unsub0@example.org", gnn)]  # gnn: 1 active, 2 in all
    follows += [("pending1@example.org", xss)]  # xss: 0 active, 1 in all
    Subscription.objects.bulk_create([Subscription(subscriber=subscribers[e], topic=t) for e, t in follows])

    def paper(key, source, seen):
        return Paper(key=key, title=f"Paper {key}", source=source, first_seen_at=seen)

    papers = Paper.objects.bulk_create(
        [
            paper("p1", "daily_json", now - timedelta(hours=1)),
            paper("p2", "daily_json", now - timedelta(hours=2)),
            paper("p3", "daily_json", now - timedelta(hours=3)),
            paper("p4", "atom", now - timedelta(days=1)),
            paper("p5", "atom", now - timedelta(days=1, hours=1)),
            paper("p6", "", now - timedelta(days=10)),  # no source recorded
            paper("p7", "atom", now - timedelta(days=40)),  # outside the 30 days
        ]
    )
    Feedback.objects.bulk_create(
        [
            Feedback(subscriber=subscribers["active0@example.org"], paper=papers[0], topic=llm, vote=1),
            Feedback(subscriber=subscribers["active1@example.org"], paper=papers[0], topic=llm, vote=1),
            Feedback(subscriber=subscribers["active2@example.org"], paper=papers[1], topic=llm, vote=-1),
            Feedback(subscriber=subscribers["active0@example.org"], paper=papers[2], topic=gnn, vote=-1),
            Feedback(subscriber=subscribers["active3@example.org"], paper=papers[3], topic=None, vote=1),
        ]
    )

    ImportRun.objects.bulk_create(
        [
            ImportRun(
                source="https://feeds.example/a", status="failed", started_at=now - timedelta(hours=5), error="old"
            ),
            ImportRun(
                source="https://feeds.example/a",
                format="atom",
                status="ok",
                started_at=now - timedelta(hours=1),
                finished_at=now - timedelta(hours=1),
                created=2,
                updated=1,
                unchanged=7,
            ),
            ImportRun(
                source="/data/daily.json",
                format="daily_json",
                status="failed",
                started_at=now - timedelta(hours=2),
                error="HTTP 503 <b>Service Unavailable</b>",
            ),
        ]
    )

    older = Issue.objects.create(frequency="weekly", period="2026-W47", created_at=now - timedelta(days=7))
    newer = Issue.objects.create(frequency="weekly", period="2026-W48", created_at=now - timedelta(minutes=10))
    deliveries = []
    for i in range(6):  # older: 4 sent, 1 failed, 1 suppressed
        status = ["sent", "sent", "sent", "sent", "failed", "suppressed"][i]
        deliveries.append(
            Delivery(
                issue=older,
                subscriber=subscribers[f"active{i}@example.org"],
                status=status,
                attempts=3 if status == "failed" else 1,
                last_error="550 5.1.1 <active4@example.org>: No such user" if status == "failed" else "",
            )
        )
    for i, status in enumerate(["sent", "sent", "queued", "queued", "sending", "skipped"]):  # newer: in progress
        deliveries.append(Delivery(issue=newer, subscriber=subscribers[f"active{i}@example.org"], status=status))
    deliveries.append(
        Delivery(
            issue=newer,
            subscriber=subscribers["paused0@example.org"],
            status="failed",
            attempts=1,
            last_error="451 4.3.0 Try again later",
        )
    )
    Delivery.objects.bulk_create(deliveries)
    return {"subscribers": subscribers, "older": older, "newer": newer, "llm": llm, "gnn": gnn}


SOURCES = ["huggingface daily", "arxiv cs.CL", "arxiv cs.LG", "paperswithcode"]
TOPICS = [
    "large language models",
    "diffusion models",
    "graph neural networks",
    "reinforcement learning from human feedback",
    "protein structure prediction",
    "retrieval augmented generation",
    "vision transformers",
    "speech recognition",
    "causal inference",
    "federated learning",
    "robotics manipulation",
    "time series forecasting",
]


def build_showcase(now: datetime = NOW, *, subscribers: int = 600, seed: int = 7) -> None:
    """A realistic few hundred subscribers, 30 days of papers, 10 weekly issues (the newest being sent)."""
    rng = random.Random(seed)
    statuses = ["active"] * 70 + ["pending"] * 10 + ["paused"] * 5 + ["unsubscribed"] * 12 + ["bounced"] * 3
    rows = []
    for i in range(subscribers):
        # Growth speeds up: more sign-ups in recent weeks.
        age_days = int(rng.triangular(0, 140, 10))
        created = now - timedelta(days=age_days, minutes=rng.randint(0, 1400))
        status = rng.choice(statuses)
        unsubscribed_at = None
        if status == "unsubscribed":
            unsubscribed_at = created + timedelta(days=rng.randint(0, max(age_days, 1)))
        rows.append(
            _subscriber(
                f"reader{i}@example.org",
                status,
                created,
                confirmed=status != "pending",
                unsubscribed_at=unsubscribed_at,
            )
        )
    people = Subscriber.objects.bulk_create(rows)
    Topic.objects.bulk_create([Topic(query=q) for q in TOPICS], ignore_conflicts=True)
    by_query = Topic.objects.in_bulk(TOPICS, field_name="query")
    topics = [by_query[q] for q in TOPICS]
    weights = [40, 22, 14, 12, 9, 18, 8, 5, 4, 3, 3, 2]
    links = set()
    for person in people:
        for topic in rng.choices(topics, weights=weights, k=rng.randint(1, 3)):
            links.add((person.id, topic.id))
    Subscription.objects.bulk_create([Subscription(subscriber_id=s, topic_id=t) for s, t in links])

    papers = []
    for day in range(35):
        for source_index, source in enumerate(SOURCES):
            base = [45, 28, 22, 8][source_index]
            count = 0 if (day % 7 in (5, 6) and source != "huggingface daily") else rng.randint(base // 2, base)
            for n in range(count):
                papers.append(
                    Paper(
                        key=f"{source}-{day}-{n}",
                        title=f"Paper {day}-{n}",
                        source=source,
                        first_seen_at=now - timedelta(days=day, hours=rng.randint(0, 12)),
                    )
                )
    papers = Paper.objects.bulk_create(papers)

    followed = list(links)
    votes = {}
    for _ in range(400):
        subscriber_id, topic_id = rng.choice(followed)
        paper = rng.choice(papers)
        votes[(subscriber_id, paper.id)] = Feedback(
            subscriber_id=subscriber_id,
            paper_id=paper.id,
            topic_id=topic_id,
            vote=1 if rng.random() < 0.78 else -1,
        )
    Feedback.objects.bulk_create(votes.values())

    runs = []
    for hour in range(0, 72, 6):
        for source in ["https://huggingface.co/api/daily_papers", "https://export.arxiv.org/rss/cs.CL"]:
            runs.append(
                ImportRun(
                    source=source,
                    format="daily_json" if "huggingface" in source else "rss",
                    status="ok",
                    started_at=now - timedelta(hours=hour, minutes=30),
                    finished_at=now - timedelta(hours=hour, minutes=29),
                    created=rng.randint(0, 12),
                    updated=rng.randint(0, 30),
                    unchanged=rng.randint(20, 80),
                )
            )
    runs.append(
        ImportRun(
            source="https://paperswithcode.com/latest",
            format="html_page",
            status="failed",
            started_at=now - timedelta(minutes=31),
            finished_at=now - timedelta(minutes=30),
            error="HTTP 503 Service Unavailable after 3 attempts",
        )
    )
    ImportRun.objects.bulk_create(runs)

    active = [p for p in people if p.status in ("active", "bounced", "unsubscribed")]
    errors = [
        "550 5.1.1 <{email}>: Recipient address rejected: User unknown",
        "451 4.7.1 Greylisted, please try again later",
        "552 5.2.2 Mailbox full",
    ]
    deliveries = []
    for week in reversed(range(10)):  # oldest first, so the newest failures are the latest rows
        issue, _ = Issue.objects.get_or_create(
            frequency="weekly",
            period=f"2026-W{48 - week}",
            defaults={"created_at": now - timedelta(weeks=week, minutes=20)},
        )
        readers = [p for p in active if p.created_at < issue.created_at]
        for index, person in enumerate(readers):
            if week == 0:  # being sent right now
                status = "sent" if index < len(readers) * 0.62 else ("sending" if index % 9 == 0 else "queued")
            else:
                roll = rng.random()
                status = (
                    "sent" if roll < 0.94 else "skipped" if roll < 0.97 else "suppressed" if roll < 0.985 else "failed"
                )
            if person.status == "bounced" and week < 2:
                status = "failed"
            error = rng.choice(errors).format(email=person.email) if status == "failed" else ""
            deliveries.append(
                Delivery(issue=issue, subscriber=person, status=status, last_error=error, attempts=3 if error else 1)
            )
    Delivery.objects.bulk_create(deliveries, batch_size=2000)
