"""Papers written for the public pages' tests, on fixed days of March 2026 (the site's time
zone is UTC in tests): Friday 13 March has three, Thursday 12 none, Wednesday 11 one,
Monday 9 two; nothing after the 13th."""

from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from papers.models import Paper
from ranking import index, semantic
from ranking.api import embed_papers


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


PAPERS = [
    dict(
        key="2603.10001",
        arxiv_id="2603.10001",
        title="Long Video Understanding with Sparse Frame Sampling",
        abstract="We study video understanding for hour-long videos. Sparse frames answer questions about events, "
        "improving temporal reasoning over video. Code: https://github.com/example/sparse-frames.",
        authors=["Mei Tanaka", "Omar Haddad"],
        categories=["cs.CV"],
        first_seen_at=at(13, 9),
        upvotes=40,
    ),
    dict(
        key="2603.10002",
        arxiv_id="2603.10002",
        title="Attention in $O(n \\log n)$ Time for Long Context Language Models",
        abstract="We reduce the cost of attention from $O(n^2)$ to $O(n \\log n)$ for long context language models, "
        "with error below $\\epsilon = 10^{-3}$ on every benchmark. Project page: https://longctx.example.org/.",
        authors=["Lena Novak"],
        categories=["cs.CL", "cs.LG"],
        first_seen_at=at(13, 15),
        upvotes=40,
    ),
    dict(
        key="2603.10003",
        arxiv_id="2603.10003",
        title="Speech Recognition for Low-Resource Languages",
        abstract="Automatic speech recognition for languages with little transcribed audio, using self-supervised "
        "pretraining on untranscribed speech.",
        authors=["Amina Diallo"],
        categories=["cs.CL"],
        first_seen_at=at(13, 10),
        upvotes=7,
    ),
    dict(
        key="2603.09001",
        arxiv_id="2603.09001",
        title="Video Generation with Latent Diffusion",
        abstract="A latent diffusion model generates video from text prompts, learning motion from large video "
        "collections; samples are sharp and temporally consistent.",
        authors=["Paulo Reis"],
        categories=["cs.CV"],
        first_seen_at=at(11),
        upvotes=90,
    ),
    dict(
        key="2603.07001",
        arxiv_id="2603.07001",
        title="Reinforcement Learning for Legged Robot Locomotion",
        abstract="Legged robots learn to walk over rough terrain with reinforcement learning in simulation and "
        "transfer the policy to hardware.",
        authors=["Kofi Mensah", "Geoffrey Hinton"],
        categories=["cs.RO"],
        first_seen_at=at(9, 8),
        upvotes=300,
    ),
    dict(
        key="2603.07002",
        arxiv_id="2603.07002",
        title="Protein Structure Prediction with Deep Learning",
        abstract="We predict the three-dimensional structure of proteins from amino acid sequences with an "
        "attention-based network trained on solved structures.",
        authors=["Ada Lovelace"],
        categories=["q-bio.BM"],
        first_seen_at=at(9, 20),
        upvotes=3,
    ),
]


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Rate limits, cached searches and paper indexes of other tests stay theirs."""
    cache.clear()
    index.clear_cache()
    yield
    cache.clear()
    index.clear_cache()


@pytest.fixture
def lexical_only(monkeypatch):
    monkeypatch.setattr(semantic, "_availability", False)


@pytest.fixture
def papers(db):
    """The papers as the importers leave them: stored with their embeddings."""
    made = {spec["key"]: Paper.objects.create(**spec) for spec in PAPERS}
    embed_papers(list(made.values()))
    return made


def titles(html: str, papers) -> list[str]:
    """The titles of ``papers`` in the order the page shows them."""
    found = [(html.find(f'href="/papers/{p.pk}/"'), p.title) for p in papers.values()]
    return [title for position, title in sorted(found) if position >= 0]
