"""Sample data for digest tests: papers on known topics and subscribers following them."""

from __future__ import annotations

import datetime as dt
import itertools

from django.core.mail import get_connection
from django.utils import timezone

from digests.models import Delivery, Issue
from papers.models import Paper
from subscriptions.models import Subscriber, Subscription, Topic

# Topic vocabularies do not overlap, so which papers a subscriber should get is clear.
TOPIC_PAPERS = {
    "diffusion sampling": [
        ("Faster diffusion sampling for image synthesis", "Diffusion sampling in ten steps."),
        ("Diffusion sampling as video world simulators", "Video diffusion sampling learns physics."),
    ],
    "reinforcement learning": [
        ("Offline reinforcement learning from human play", "Reinforcement learning agents trained offline."),
        ("Reward shaping for sparse reinforcement learning", "Dense rewards help reinforcement learning."),
    ],
    "protein folding": [
        ("Protein folding with sequence transformers", "A protein transformer predicts folding structure."),
    ],
    "graph networks": [
        ("Graph networks for molecule energies", "Message passing graph networks predict energies."),
    ],
    "speech recognition": [
        ("Streaming speech recognition on phones", "Low latency speech recognition on a phone chip."),
    ],
    "quantum error correction": [
        ("Surface codes for quantum error correction", "Quantum error correction with surface codes."),
    ],
}
FILLER = "We evaluate on standard benchmarks and release code. " * 6

_counter = itertools.count(1)


def make_papers(*, first_seen_at=None) -> dict[str, list[Paper]]:
    papers: dict[str, list[Paper]] = {}
    for topic, entries in TOPIC_PAPERS.items():
        for title, abstract in entries:
            n = next(_counter)
            papers.setdefault(topic, []).append(
                Paper.objects.create(
                    key=f"2611.{n:05d}",
                    arxiv_id=f"2611.{n:05d}",
                    title=title,
                    abstract=abstract + " " + FILLER,
                    authors=["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"],
                    upvotes=10 + n,
                    page_url=f"https://papers.example.org/papers/2611.{n:05d}",
                    first_seen_at=first_seen_at or timezone.now() - dt.timedelta(hours=2),
                )
            )
    return papers


CONFIRMED_LONG_AGO = dt.datetime(2025, 1, 6, 12, 0, tzinfo=dt.UTC)


def make_subscriber(email: str, topics=("diffusion sampling",), **fields) -> Subscriber:
    fields.setdefault("status", Subscriber.Status.ACTIVE)
    # Long confirmed: before the real clock and before any fixed "now" a test pins.
    fields.setdefault("confirmed_at", CONFIRMED_LONG_AGO)
    subscriber = Subscriber.objects.create(email=email, **fields)
    for query in topics:
        topic, _ = Topic.objects.get_or_create(query=query)
        Subscription.objects.create(subscriber=subscriber, topic=topic)
    return subscriber


def smtp(sink):
    return get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=sink.port, timeout=5)


def queued_delivery(subscriber, issue=None, **fields) -> Delivery:
    issue = issue or Issue.objects.get_or_create(frequency="weekly", period="2026-W49")[0]
    return Delivery.objects.create(issue=issue, subscriber=subscriber, **fields)
