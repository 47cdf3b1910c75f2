"""The sentence model on onnxruntime: the same embeddings as sentence-transformers on
PyTorch, its graph built once and shared, and lexical ranking when the model is broken."""

import json
import logging
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ranking import encoder, semantic

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def reference():
    """Sentences and the vectors sentence-transformers gave them on PyTorch
    (bench/make_reference_embeddings.py)."""
    meta = json.loads((DATA / "reference_sentences.json").read_text())
    vectors = np.load(DATA / "reference_embeddings.npy")
    assert len(meta["sentences"]) == len(vectors)
    return [s["kind"] for s in meta["sentences"]], [s["text"] for s in meta["sentences"]], vectors


@pytest.fixture
def model(monkeypatch):
    monkeypatch.setattr(semantic, "_availability", None)
    assert semantic.is_available()
    return semantic.get_model()


def test_embeddings_match_sentence_transformers_within_1e4_cosine(model, reference):
    kinds, texts, expected = reference
    assert {"title", "abstract", "topic", "unicode", "empty", "over-length"} <= set(kinds)
    got = semantic.encode(texts)
    assert got.dtype == np.float32 and got.shape == expected.shape
    cosine = (got * expected).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    worst = {kind: float(1 - cosine[[k == kind for k in kinds]].min()) for kind in set(kinds)}
    assert max(worst.values()) < 1e-4, worst
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_a_text_gets_the_same_vector_alone_or_in_any_batch(model, reference):
    _, texts, _ = reference
    together = model.encode(texts)
    alone = np.stack([model.encode([t])[0] for t in texts[::7]])
    reversed_order = model.encode(texts[::-1])[::-1]
    assert np.abs(together[::7] - alone).max() < 1e-5
    assert np.abs(together - reversed_order).max() < 1e-5


def test_padding_columns_change_no_vector(model):
    """The graph runs its dense layers on the kept tokens only and gathers them back for
    attention (ranking.bert_graph): however much a batch is padded, each text's vector is
    what it is alone."""
    texts = ["graph neural networks", "video understanding with transformers", "rl"]
    ids = [model.tokenizer.encode(t).ids for t in texts]
    alone = model.encode(texts)
    for width in (max(map(len, ids)), 40):
        batch = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros_like(batch)
        for row, tokens in enumerate(ids):
            batch[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        (got,) = model.session.run(None, {"input_ids": batch, "attention_mask": mask})
        assert np.abs(got - alone).max() < 1e-5


def test_texts_that_tokenise_alike_are_encoded_once_and_share_their_vector(model, monkeypatch):
    rows = []
    run = model.session.run

    def recording(outputs, feed):
        rows.append(len(feed["input_ids"]))
        return run(outputs, feed)

    monkeypatch.setattr(model.session, "run", recording)
    texts = ["Graph Neural Networks", "video", "graph  neural networks", "Gráph neural networks ", "graph networks"]
    got = model.encode(texts)
    assert sum(rows) == 3  # the three spellings of one topic are one input to the model
    assert np.array_equal(got[0], got[2]) and np.array_equal(got[0], got[3])
    assert not np.allclose(got[0], got[4])
    monkeypatch.setattr(model.session, "run", run)
    assert np.abs(got - np.stack([model.encode([t])[0] for t in texts])).max() < 1e-5


def test_short_texts_are_not_padded_to_the_longest_one(model, monkeypatch):
    widths = []
    run = model.session.run

    def recording(outputs, feed):
        widths.append(feed["input_ids"].shape)
        return run(outputs, feed)

    monkeypatch.setattr(model.session, "run", recording)
    long_text = " ".join(["transformer"] * 600)
    model.encode(["video understanding", long_text, "graph neural networks", "attention " + long_text])
    assert sorted(widths) == [(2, 5), (2, encoder.MAX_TOKENS)]  # cut at 256 word pieces, topics in their own batch


def test_batches_group_by_length_within_the_budget():
    lengths = [10, 256, 12, 256, 9, 256, 256, 256, 256, 256, 256, 256, 11, 40, 70] + [6] * 100
    groups = encoder.batches(lengths)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    for group in groups:
        widths = [lengths[i] for i in group]
        assert len(group) <= encoder.MAX_BATCH and len(group) * max(widths) <= encoder.MAX_BATCH_TOKENS
        assert max(widths) <= max(2 * min(widths), min(widths) + encoder.MAX_PADDING)
    assert sorted(len(g) for g in groups if lengths[g[0]] == 256) == [1, 4, 4]  # 1,024 tokens a batch


def test_the_tokenizer_keeps_no_stored_padding_and_cuts_at_256(model):
    assert len(model.tokenizer.encode("graph networks").ids) == 4  # [CLS] graph networks [SEP], not 128
    assert len(model.tokenizer.encode("word " * 1000).ids) == encoder.MAX_TOKENS


def test_the_graph_is_cached_under_var_dir_by_package_version_and_reused(model, settings, monkeypatch):
    cached = encoder.graph_path(settings.VAR_DIR)
    assert model.graph == cached and cached.exists()
    assert f"-{encoder.package_version()}-" in cached.name and encoder.package_version() == "0.1.0"
    weights = [p for p in cached.parent.iterdir() if p.suffix == ".weights"]
    assert len(weights) == 1 and weights[0].stat().st_size > 60_000_000
    monkeypatch.setattr(encoder, "build_graph", lambda *a: pytest.fail("built again"))
    again = encoder.load(settings.VAR_DIR, threads=1)  # another process: loads, never builds
    assert np.array_equal(again.encode(["graph networks"]), model.encode(["graph networks"]))
    monkeypatch.setattr(encoder, "package_version", lambda: "0.2.0")
    assert encoder.graph_path(settings.VAR_DIR) != cached  # a new model version gets its own graph


def test_the_weights_are_mapped_from_the_cached_file_not_copied(model):
    mapped = [line for line in Path("/proc/self/maps").read_text().splitlines() if line.endswith(".weights")]
    assert mapped, "onnxruntime read the weights into memory instead of mapping the file"


def _build(target: str) -> None:
    encoder.build_graph(encoder.model_folder(), Path(target))


def test_two_processes_building_at_once_leave_one_whole_graph(model, tmp_path):
    target = tmp_path / "models" / encoder.graph_path(tmp_path).name
    context = multiprocessing.get_context("fork")
    builders = [context.Process(target=_build, args=(str(target),)) for _ in range(2)]
    for process in builders:
        process.start()
    for process in builders:
        process.join(120)
    assert [p.exitcode for p in builders] == [0, 0]
    assert sorted(p.suffix for p in target.parent.iterdir()) == [".onnx", ".weights"]  # no temporary file left
    built = encoder.Encoder(target, encoder.model_folder(), threads=1)
    assert np.abs(built.encode(["graph networks"]) - model.encode(["graph networks"])).max() < 1e-6


def test_a_damaged_cached_graph_is_built_again(model, tmp_path, caplog):
    target = encoder.graph_path(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half a graph")  # a copy cut short
    with caplog.at_level(logging.WARNING, logger="ranking.encoder"):
        rebuilt = encoder.load(tmp_path, threads=1)
    assert "building it again" in caplog.text
    assert np.abs(rebuilt.encode(["graph networks"]) - model.encode(["graph networks"])).max() < 1e-6


@pytest.fixture
def broken_model_folder(tmp_path, monkeypatch, settings):
    """The package's files with the weights cut short, and no graph cached yet."""
    folder = tmp_path / "model"
    shutil.copytree(encoder.model_folder(), folder, ignore=shutil.ignore_patterns("model.safetensors"))
    with open(encoder.model_folder() / "model.safetensors", "rb") as source:
        (folder / "model.safetensors").write_bytes(source.read(1_000_000))
    monkeypatch.setattr(encoder, "model_folder", lambda: folder)
    settings.VAR_DIR = tmp_path / "var"
    monkeypatch.setattr(semantic, "_model", None)
    monkeypatch.setattr(semantic, "_availability", None)
    return folder


def test_weights_cut_short_are_refused(broken_model_folder):
    with pytest.raises(encoder.ModelUnavailable, match="cut short"):
        encoder.read_safetensors(broken_model_folder / "model.safetensors")


def test_a_broken_model_folder_means_lexical_ranking_said_once(db, broken_model_folder, caplog):
    from ranking.api import rank_topics
    from tests.ranking_corpus import make_paper

    make_paper(key="v", title="Video understanding", abstract="Models that watch long videos.")
    with caplog.at_level(logging.WARNING, logger="ranking.semantic"):
        assert not semantic.is_available()
        ranked = rank_topics(["video understanding"])
        assert not semantic.is_available()
    assert [r.paper.key for r in ranked] == ["v"]
    warnings = [r.getMessage() for r in caplog.records if "semantic ranking off" in r.getMessage()]
    assert len(warnings) == 1 and "cut short" in warnings[0]


def test_a_model_loaded_before_fork_works_in_the_forked_process(model, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(semantic, "_model", None)
    assert semantic.load_before_fork(1)
    parent = semantic.get_model()
    assert parent.threads == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    expected = parent.encode(["graph networks", "video understanding at scale"])
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's model, not a new one
        try:
            vectors = semantic.encode(["graph networks", "video understanding at scale"])
            same = semantic.get_model() is parent and np.abs(vectors - expected).max() < 1e-6
            os.write(writer, b"ok" if same else b"different")
        finally:
            os._exit(0)
    os.close(writer)
    answer = os.read(reader, 16)
    os.waitpid(pid, 0)
    assert answer == b"ok"


def test_a_pool_process_with_more_threads_gets_its_own_session_on_the_same_weights(model, monkeypatch):
    monkeypatch.setattr(semantic, "_model", model)
    semantic.use_threads(model.threads)
    assert semantic.get_model() is model  # the right count already: kept
    semantic.use_threads(model.threads + 1)
    replaced = semantic.get_model()
    assert replaced is not model and replaced.threads == model.threads + 1 and replaced.graph == model.graph


def test_a_parent_of_multithreaded_children_builds_the_graph_but_loads_nothing(model, settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(semantic, "_model", None)
    assert semantic.load_before_fork(2)
    assert encoder.graph_path(tmp_path).exists()
    assert semantic._model is None  # each child makes its own session, with its own threads
