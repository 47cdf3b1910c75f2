"""Where ranking keeps its embeddings: ``PaperEmbedding`` per paper, ``QueryEmbedding``
per followed topic (keyed by a hash of the model and the words, never the words).

Papers are embedded when they are stored (``embed_papers``, from the ``papers_stored``
signal, inside the import's transaction); followed topics when they are made
(``store_query_embeddings``, a task queued by the signup) or, failing that, when an
issue ranks them.
"""

from __future__ import annotations

import hashlib

import numpy as np
from django.db import connection, transaction

from papers.models import Paper
from ranking import semantic
from ranking.models import PaperEmbedding, QueryEmbedding


def model_tag(title: str, abstract: str) -> str:
    """What ``PaperEmbedding.model`` records: the model and a short hash of the text it
    embedded, so a re-import that changes only upvotes does not embed the paper again."""
    digest = hashlib.blake2b(f"{title}\n{abstract}".encode(), digest_size=6).hexdigest()
    return f"{semantic.MODEL_NAME}#{digest}"


def is_current_model(tag: str) -> bool:
    """The stored embedding was made by this model (whatever text it came from)."""
    return (tag or "").split("#")[0] == semantic.MODEL_NAME


def query_key(text: str) -> str:
    return hashlib.blake2b(f"{semantic.MODEL_NAME}\n{text}".encode(), digest_size=16).hexdigest()


def embed_papers(papers) -> int:
    """Compute and store the embeddings of ``papers`` (saved ``Paper`` objects, new or
    changed) whose title and abstract are not what their stored embedding was made from.
    Returns how many were embedded; 0 (logged once) when the model is unavailable."""
    return len(embed_changed_papers(papers))


def embed_changed_papers(papers) -> list[int]:
    """``embed_papers``, returning the ids of the papers it embedded (new text: an upvote
    change embeds nothing)."""
    papers = [p for p in papers if p.pk is not None]
    if not papers or not semantic.is_available():
        return []
    known = dict(PaperEmbedding.objects.filter(paper_id__in=[p.pk for p in papers]).values_list("paper_id", "model"))
    papers = [p for p in papers if known.get(p.pk) != model_tag(p.title, p.abstract or "")]
    if not papers:
        return []
    vectors = semantic.embed_paper_texts([p.title for p in papers], [p.abstract or "" for p in papers])
    rows = [
        PaperEmbedding(paper_id=p.pk, vector=semantic.to_bytes(v), model=model_tag(p.title, p.abstract or ""))
        for p, v in zip(papers, vectors, strict=True)
    ]
    PaperEmbedding.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["paper"], update_fields=["vector", "model"], batch_size=500
    )
    return [row.paper_id for row in rows]


def paper_vectors(paper_ids) -> dict[int, np.ndarray]:
    """Stored current embeddings of these papers, in one query."""
    return vectors_of(Paper.objects.filter(id__in=list(paper_ids)))


def vectors_of(papers) -> dict[int, np.ndarray]:
    """Stored current embeddings of the papers of a queryset, in one query (a join, not
    a list of ids: an index may hold a hundred thousand papers)."""
    found = {}
    for paper_id, blob, tag in PaperEmbedding.objects.filter(paper__in=papers.values("id")).values_list(
        "paper_id", "vector", "model"
    ):
        vector = current_vector(blob, tag)
        if vector is not None:
            found[paper_id] = vector
    return found


def current_vector(blob, tag) -> np.ndarray | None:
    """A stored embedding, or None when there is none or the model that made it is not ours."""
    return semantic.from_bytes(blob) if tag and is_current_model(tag) else None


def stored_query_vectors(texts) -> dict[str, np.ndarray]:
    """Stored embeddings of these topic texts, in one query."""
    keys = {query_key(text): text for text in texts}
    if not keys:
        return {}
    found = {}
    for key, blob in QueryEmbedding.objects.filter(key__in=list(keys)).values_list("key", "vector"):
        vector = semantic.from_bytes(blob)
        if vector is not None:
            found[keys[key]] = vector
    return found


def store_query_vectors(vectors: dict[str, np.ndarray]) -> None:
    """Keep these topics' embeddings. In key order, so that two workers storing the same
    new topics at once wait for each other instead of deadlocking."""
    rows = sorted(
        (QueryEmbedding(key=query_key(text), vector=semantic.to_bytes(vector)) for text, vector in vectors.items()),
        key=lambda row: row.key,
    )
    if not rows:
        return
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        QueryEmbedding.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        return
    # A transaction of its own that does not wait for the disk: an embedding lost in a crash
    # is computed again when it is next needed, and a ranking batch that stores new topics
    # no longer waits for a WAL flush each time. Inside a caller's transaction the caller's
    # writes decide, so there it is left alone.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        QueryEmbedding.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)


def forget_queries(texts) -> None:
    """Drop the embeddings of topics nobody follows any more."""
    keys = [query_key(text) for text in texts]
    if keys:
        QueryEmbedding.objects.filter(key__in=keys).delete()
