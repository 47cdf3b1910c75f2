"""Celery worker processes for the benchmarks and drills (``bench.pipeline``, ``bench.faults``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._harness import PYTHON, REPO, child_pids, peak_rss_kb, stop_process


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen
    ready_file: Path
    peak_main_kb: int = 0
    peak_pool_kb: int = 0
    kills: int = 0
    history: list[int] = field(default_factory=list)  # peak pool RSS of earlier incarnations


class WorkerPool:
    """N Celery worker processes (``-c 1 --pool=prefork``), each in its own session.

    The workers run ``bench.worker_app`` (the project's app plus timing probes) and touch a
    ready file on ``worker_ready``. A sampler thread records peak RSS (VmHWM from /proc)
    of each worker's main process and of its pool process, which does the work.
    """

    def __init__(self, count: int, *, env: dict, workdir: Path, app: str = "bench.worker_app"):
        self.count = count
        self.env = env
        self.workdir = workdir
        self.app = app
        self.workers: list[Worker] = []
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None
        self._lock = threading.Lock()

    def _spawn(self, index: int) -> tuple[subprocess.Popen, Path]:
        ready = self.workdir / f"worker{index}.ready"
        ready.unlink(missing_ok=True)
        Path(f"{ready}.pool").unlink(missing_ok=True)
        logfile = open(self.workdir / f"worker{index}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                self.app,
                "worker",
                "-c",
                "1",
                "--pool=prefork",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "-n",
                f"bench{index}@%h",
                "--loglevel",
                "WARNING",
            ],
            cwd=REPO,
            env={**self.env, "BENCH_READY_FILE": str(ready)},
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return proc, ready

    def _wait_ready(self, worker: Worker, timeout: float = 60) -> None:
        def ready():
            if worker.proc.poll() is not None:
                code = worker.proc.returncode
                raise RuntimeError(f"worker {worker.index} exited with {code}: {self.log_tail(worker.index)}")
            # The worker consumes, and its pool process is initialised (sentence model loaded).
            return worker.ready_file.exists() and Path(f"{worker.ready_file}.pool").exists()

        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {worker.index} not ready after {timeout}s: {self.log_tail(worker.index)}")
            time.sleep(0.1)

    def log_tail(self, index: int, lines: int = 30) -> str:
        path = self.workdir / f"worker{index}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def start(self) -> WorkerPool:
        for index in range(self.count):
            proc, ready = self._spawn(index)
            self.workers.append(Worker(index, proc, ready))
        for worker in self.workers:
            self._wait_ready(worker)
        self._sampler = threading.Thread(target=self._sample_forever, daemon=True)
        self._sampler.start()
        return self

    def sample(self) -> None:
        with self._lock:
            for worker in self.workers:
                if worker.proc.poll() is not None:
                    continue
                worker.peak_main_kb = max(worker.peak_main_kb, peak_rss_kb(worker.proc.pid))
                for child in child_pids(worker.proc.pid):
                    worker.peak_pool_kb = max(worker.peak_pool_kb, peak_rss_kb(child))

    def _sample_forever(self) -> None:
        while not self._stop_sampling.wait(0.2):
            self.sample()

    def pool_pids(self, index: int) -> list[int]:
        return child_pids(self.workers[index].proc.pid)

    def kill(self, index: int, *, restart: bool = True) -> None:
        """SIGKILL a worker and its pool process (the whole session), then start a new one."""
        self.sample()
        with self._lock:
            worker = self.workers[index]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(timeout=10)
            worker.kills += 1
            if restart:
                worker.proc, worker.ready_file = self._spawn(index)
        if restart:
            self._wait_ready(worker)

    def stop(self) -> None:
        self.sample()
        self._stop_sampling.set()
        for worker in self.workers:
            stop_process(worker.proc, timeout=15)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
