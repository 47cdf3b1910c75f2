"""Stored similar papers (``ranking.neighbours``): each paper's nearest by embedding,
found once after its import and offered to older papers' lists."""

from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command

from papers.importers.base import PaperRecord
from papers.models import Paper
from papers.services import upsert_papers
from ranking import neighbours, semantic
from ranking.api import store_neighbours, stored_similar_ids
from ranking.models import PaperEmbedding, PaperNeighbours

pytestmark = pytest.mark.django_db


def _papers(vectors) -> list[int]:
    """Papers with these (normalised) stored embeddings; their ids in order."""
    ids = []
    start = Paper.objects.count()
    for number, vector in enumerate(vectors, start=start):
        paper = Paper.objects.create(key=f"n-{number}", title=f"Paper {number}", first_seen_at=datetime.now(UTC))
        vector = np.asarray(vector, dtype=np.float32)
        PaperEmbedding.objects.create(
            paper=paper, vector=semantic.to_bytes(vector / np.linalg.norm(vector)), model=f"{semantic.MODEL_NAME}#t"
        )
        ids.append(paper.pk)
    return ids


def _clustered(count: int, seed: int) -> np.ndarray:
    """Vectors around a few centres: every paper has near neighbours, some far ones."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, semantic.DIMENSIONS))
    return centres[rng.integers(0, 4, count)] + rng.normal(0, 0.6, (count, semantic.DIMENSIONS))


def _brute_force(ids: list[int]) -> dict[int, list[int]]:
    vectors = {i: semantic.from_bytes(PaperEmbedding.objects.get(paper_id=i).vector) for i in ids}
    floor = neighbours.min_cosine()
    expected = {}
    for paper in ids:
        scored = sorted(((float(vectors[paper] @ vectors[o]), o) for o in ids if o != paper), reverse=True)
        expected[paper] = [o for cos, o in scored if cos >= floor][: neighbours.KEPT]
    return expected


def test_each_paper_gets_its_nearest_papers_across_blocks(monkeypatch):
    monkeypatch.setattr(neighbours, "BLOCK", 7)  # several blocks, merged
    ids = _papers(_clustered(40, seed=1))
    assert store_neighbours(ids) == 40
    expected = _brute_force(ids)
    for paper in ids:
        assert stored_similar_ids(paper) == expected[paper]
    assert any(len(found) == neighbours.KEPT for found in expected.values())


def test_a_new_paper_enters_the_older_lists_it_is_nearer_to_and_no_others(monkeypatch):
    monkeypatch.setattr(neighbours, "BLOCK", 9)
    vectors = _clustered(30, seed=2)
    old = _papers(vectors)
    store_neighbours(old)
    before = {row.paper_id: list(row.ids) for row in PaperNeighbours.objects.all()}
    new = _papers([vectors[0] + np.random.default_rng(3).normal(0, 0.05, semantic.DIMENSIONS)])  # beside paper 0
    store_neighbours(new)
    expected = _brute_force(old + new)
    for paper in old + new:
        assert stored_similar_ids(paper) == expected[paper]
    assert new[0] in stored_similar_ids(old[0])  # its twin
    untouched = [paper for paper in old if new[0] not in expected[paper]]
    assert untouched and all(stored_similar_ids(paper) == before[paper] for paper in untouched)


def test_farthest_is_what_a_newcomer_must_beat():
    ids = _papers(_clustered(25, seed=4))
    store_neighbours(ids)
    for row in PaperNeighbours.objects.all():
        assert row.cosines == sorted(row.cosines, reverse=True)
        full = len(row.ids) == neighbours.KEPT
        assert row.farthest == (pytest.approx(row.cosines[-1]) if full else neighbours.min_cosine())


def test_a_paper_without_an_embedding_has_no_list():
    paper = Paper.objects.create(key="bare", title="No embedding", first_seen_at=datetime.now(UTC))
    _papers(_clustered(3, seed=5))
    assert store_neighbours([paper.pk]) == 0
    assert stored_similar_ids(paper.pk) is None


def test_unrelated_papers_are_not_neighbours():
    rng = np.random.default_rng(6)
    ids = _papers(rng.normal(size=(5, semantic.DIMENSIONS)))  # random directions: cosine about 0
    store_neighbours(ids)
    assert all(stored_similar_ids(paper) == [] for paper in ids)


def test_the_command_fills_the_lists_that_are_missing():
    ids = _papers(_clustered(12, seed=7))
    store_neighbours(ids[:3])
    assert neighbours.missing() == ids[3:]
    call_command("store_neighbours", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert neighbours.missing() == []
    assert stored_similar_ids(ids[5]) == _brute_force(ids)[ids[5]]


def test_an_import_stores_its_papers_neighbours_once_it_commits(django_capture_on_commit_callbacks):
    records = [
        PaperRecord(title="Video understanding with sparse frames", abstract="Long video question answering."),
        PaperRecord(
            title="Long video question answering", abstract="Understanding hour-long videos with sparse frames."
        ),
        PaperRecord(title="Protein folding with deep learning", abstract="Predicting protein structure."),
    ]
    with django_capture_on_commit_callbacks(execute=False) as waiting:
        upsert_papers(records, source="test")
    assert not PaperNeighbours.objects.exists()  # nothing before the commit
    for callback in waiting:
        callback()
    video, question, protein = (Paper.objects.get(title=r.title).pk for r in records)
    assert stored_similar_ids(video)[0] == question
    assert stored_similar_ids(question)[0] == video
    assert PaperNeighbours.objects.count() == 3


def test_only_new_text_sends_papers_to_the_neighbours_task(monkeypatch, django_capture_on_commit_callbacks):
    from ranking import tasks

    queued = []
    monkeypatch.setattr(tasks.store_neighbours, "delay", lambda ids: queued.append(sorted(ids)))
    first = [PaperRecord(title="Sparse attention for long documents", arxiv_id="2612.00001", upvotes=1)]
    with django_capture_on_commit_callbacks(execute=True):
        upsert_papers(first, source="test")
    paper = Paper.objects.get(arxiv_id="2612.00001").pk
    assert queued == [[paper]]
    with django_capture_on_commit_callbacks(execute=True):  # new upvotes only: same text, same neighbours
        upsert_papers([PaperRecord(title=first[0].title, arxiv_id="2612.00001", upvotes=9)], source="test")
    assert queued == [[paper]]
    with django_capture_on_commit_callbacks(execute=True):
        rewritten = PaperRecord(title=first[0].title, arxiv_id="2612.00001", abstract="Now with one.")
        upsert_papers([rewritten], source="test")
    assert queued == [[paper], [paper]]
