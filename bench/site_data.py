"""Papers for ``bench/site_load.py``: a public site's two years of them, bulk inserted.

Titles and abstracts come from the ML/CS vocabulary of ``bench/vocabulary.py`` (a head
topic, a long-tail phrase, about 180 words of abstract, now and then some maths), spread
evenly over ``days`` days before ``now``, with skewed upvotes, arXiv ids and categories.

Embeddings: the sentence model cannot embed 100,000 texts on two busy cores in a bench's
time (about an hour). Each paper's embedding is instead the normalised weighted sum of
the real model's embeddings of its parts (head topic, method, domain, modifier), so that
papers about one subject are close and the vectors are the model's own kind; what the
pages do with them (load, multiply, sort) costs what it would with real ones.

Similar papers: each paper's stored neighbours (``ranking.neighbours``), as the import's
task would leave them, found among the papers of its head topic (the largest part of its
vector, so where its nearest are): every pair of 100,000 papers would take about ten
minutes of one core; 178 head topics of about 560 papers each take seconds.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import numpy as np

from bench.vocabulary import DOMAINS, FILLER, HEAD_TOPICS, METHODS, MODIFIERS, OBJECTS

CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "cs.RO", "stat.ML", "cs.IR", "eess.AS"]
MATHS = [
    "in $O(n \\log n)$ time",
    "with error $\\epsilon < 10^{-3}$",
    "for any $k \\geq 2$",
    "at rate $\\mathcal{O}(1/\\sqrt{T})$",
]
# Searches as readers type them: topics, a phrase, an exclusion, an author, a category.
SEARCHES = [
    "large language models",
    "diffusion models for protein design",
    "reinforcement learning for robotics",
    "graph neural networks chemistry",
    '"mixture of experts"',
    "efficient attention",
    "speech recognition -translation",
    "retrieval augmented generation",
    "code generation benchmark",
    "federated learning privacy",
    "knowledge distillation",
    "quantization of transformers",
    "cat:cs.CL instruction tuning",
    'author:"Author 1234"',
    "contrastive learning for medicine",
    "self-supervised learning genomics",
    "few-shot learning",
    "neural architecture search",
    "weather forecasting with diffusion",
    "interpretable causal models",
]


def _part_vectors() -> dict[str, np.ndarray] | None:
    from ranking import semantic

    if not semantic.is_available():
        return None
    texts = sorted({*HEAD_TOPICS, *METHODS, *DOMAINS, *MODIFIERS})
    return dict(zip(texts, semantic.encode(texts), strict=True))


def _abstract(rng: random.Random, head: str, tail: str) -> str:
    sentences = [f"{rng.choice(FILLER)} {rng.choice(OBJECTS)} for {head} in {rng.choice(DOMAINS)}."]
    for _ in range(rng.randint(6, 9)):
        sentences.append(
            f"{rng.choice(FILLER)} {rng.choice(OBJECTS)} on {rng.choice(DOMAINS)} with {rng.choice(METHODS)}, "
            f"building on {rng.choice(HEAD_TOPICS)} and {rng.choice(METHODS)} to reach {rng.choice(OBJECTS)}."
        )
    sentences.insert(2, f"The approach, {tail}, works {rng.choice(MATHS)}." if rng.random() < 0.1 else f"It is {tail}.")
    if rng.random() < 0.2:
        sentences.append(f"Code: https://github.com/bench-lab/{head.replace(' ', '-')}-{rng.randrange(10_000)}.")
    return " ".join(sentences)


def new_record(rng: random.Random, day: date, number: int):
    """A paper as a day's import brings it (``PaperRecord``): announced on ``day``, written
    as ``create_papers`` writes its papers."""
    from papers.importers.base import PaperRecord

    head, method, domain, modifier = (
        rng.choice(HEAD_TOPICS),
        rng.choice(METHODS),
        rng.choice(DOMAINS),
        rng.choice(MODIFIERS),
    )
    tail = f"{modifier} {method} for {domain}"
    arxiv_id = f"{day:%y%m}.{90000 + 300 * day.day + number:05d}"  # create_papers's 9xxxx are two years old
    return PaperRecord(
        title=f"{rng.choice(MODIFIERS).capitalize()} {head}: {tail}",
        abstract=_abstract(rng, head, tail),
        arxiv_id=arxiv_id,
        authors=[f"Author {rng.randrange(20_000)}" for _ in range(rng.randint(1, 8))],
        categories=rng.sample(CATEGORIES, rng.randint(1, 3)),
        announced_on=day,
        upvotes=int(rng.paretovariate(1.3)) - 1,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
    )


def create_papers(count: int, *, now: datetime, days: int = 730, seed: int = 7, batch: int = 2000) -> int:
    """``count`` papers announced (and first seen) evenly over the ``days`` days before ``now``,
    with their embeddings; returns how many. Every hundredth paper has no announcement day,
    as from a source that gives none: the site dates it by when it was first seen."""
    from papers.models import Paper
    from ranking import neighbours, semantic
    from ranking.models import PaperEmbedding

    rng = random.Random(seed)
    parts = _part_vectors()
    model_tag = f"{semantic.MODEL_NAME}#bench"
    made = 0
    by_head: dict[str, tuple[list, list]] = {}
    while made < count:
        papers, vectors, heads = [], [], []
        for index in range(made, min(made + batch, count)):
            head, modifier = rng.choice(HEAD_TOPICS), rng.choice(MODIFIERS)
            method, domain = rng.choice(METHODS), rng.choice(DOMAINS)
            tail = f"{modifier} {method} for {domain}"
            seen = now - timedelta(days=days * (index + rng.random()) / count)
            arxiv_id = f"{seen:%y%m}.{index:05d}"
            paper = Paper(
                key=arxiv_id,
                arxiv_id=arxiv_id,
                title=f"{rng.choice(MODIFIERS).capitalize()} {head}: {tail}",
                abstract=_abstract(rng, head, tail),
                authors=[f"Author {rng.randrange(20_000)}" for _ in range(rng.randint(1, 8))],
                categories=rng.sample(CATEGORIES, rng.randint(1, 3)),
                published_at=seen - timedelta(days=rng.randint(0, 3)),
                announced_on=None if index % 100 == 99 else seen.date(),
                first_seen_at=seen,
                upvotes=int(rng.paretovariate(1.3)) - 1,
                abs_url=f"https://arxiv.org/abs/{arxiv_id}",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
                source="bench",
            )
            if parts is not None:
                vector = 2 * parts[head] + parts[method] + parts[domain] + 0.5 * parts[modifier]
                vector = vector + np.random.default_rng(index).normal(0, 0.02, vector.shape)
                vectors.append((vector / np.linalg.norm(vector)).astype(np.float32).tobytes())
            papers.append(paper)
            heads.append(head)
        Paper.objects.bulk_create(papers, batch_size=batch)
        embeddings = [
            PaperEmbedding(paper_id=paper.pk, vector=vector, model=model_tag)
            for paper, vector in zip(papers, vectors, strict=False)
        ]
        PaperEmbedding.objects.bulk_create(embeddings, batch_size=batch)
        for paper, vector, head in zip(papers, vectors, heads, strict=False):
            ids, head_vectors = by_head.setdefault(head, ([], []))
            ids.append(paper.pk)
            head_vectors.append(vector)
        made += len(papers)
    for ids, head_vectors in by_head.values():
        matrix = np.frombuffer(b"".join(head_vectors), dtype=np.float32).reshape(len(ids), -1)
        neighbours.save(neighbours.nearest_among(np.array(ids), matrix))
    return made
