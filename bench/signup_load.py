"""Load test: the signup page and its preview endpoint under 50 concurrent clients.

Serves the app production-style (uWSGI as ``python -m digestsite.web`` starts it, DEBUG
off, a SECRET_KEY, collectstatic, WhiteNoise) on a free loopback port over a scratch PostgreSQL database with papers and
subscribers in it, then runs 50 concurrent clients for 30 seconds. Each client loads the
page, then asks for a preview of a few topics, and again, until the time is up (or a
hard cap of requests is reached). Prints requests per second, p50 and p95 latency and
errors per endpoint. Target: no errors, p95 under 200 ms for the page.

    .venv/bin/python -m bench.signup_load
    .venv/bin/python -m bench.signup_load --clients 50 --seconds 30 --preview-url '/preview.json?topics={topics}'

The preview query is what the page's script sends: the topics textarea as typed, one
topic per line. The app's cache (rate limits, and whatever else it caches) is a private
redis-server, as production points ``CACHE_URL`` at Redis so every web process shares it.

The last line is ``page p95 MS errors E``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from bench import _harness as h

PAGE_P95_TARGET_MS = 200.0
MAX_REQUESTS = 1_000_000  # a bound on the loop whatever the duration


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Load-test the signup page and the preview endpoint.")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--page-url", default="/")
    parser.add_argument(
        "--preview-url",
        default=os.environ.get("BENCH_PREVIEW_URL", "/preview.json?topics={topics}"),
        help="path of the preview endpoint; {topics} becomes the URL-encoded topic lines (one per line, "
        "as the signup page's script sends the textarea)",
    )
    parser.add_argument("--processes", type=int, default=None, help="override WEB_CONCURRENCY (digestsite.web)")
    parser.add_argument("--threads", type=int, default=None, help="override WEB_THREADS (digestsite.web)")
    parser.add_argument(
        "--preview-rate",
        default="100000/m",
        help="PREVIEW_RATE_PER_IP for the server: the bench measures capacity, and its clients (no think time) "
        "ask for previews faster than the production limit allows a person (120/m)",
    )
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument("--subscribers", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=3)
    return parser.parse_args(argv)


def client_address(number: int) -> str:
    """Each client connects from an address of its own in 127.0.0.0/8 (still loopback), so
    the per-IP rate limits see 50 people, not one machine hammering the preview."""
    return f"127.0.0.{2 + number % 250}"


async def fetch(port: int, path: str, timeout: float = 10.0, source: str | None = None) -> tuple[int, float]:
    """One GET on a fresh connection (as a browser's first visit); returns (status, seconds)."""
    started = time.perf_counter()
    local = (source, 0) if source else None
    reader, writer = await asyncio.wait_for(asyncio.open_connection(h.HOST, port, local_addr=local), timeout)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench-signup-load\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    elapsed = time.perf_counter() - started
    status_line = response.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 else 0
    return status, elapsed


def preview_path(template: str, rng: random.Random) -> str:
    from bench.vocabulary import HEAD_TOPICS, long_tail_topic

    topics = rng.sample(HEAD_TOPICS, rng.randint(1, 3))
    if rng.random() < 0.3:
        topics.append(long_tail_topic(rng))
    # One topic per line, as static/js/signup.js sends the textarea (the endpoint splits
    # on line breaks only: joined with commas, the topics would be one long query).
    return template.replace("{topics}", urllib.parse.quote_plus("\n".join(topics)))


async def load(port: int, *, clients: int, seconds: float, page_url: str, preview_url: str, seed: int) -> dict:
    results: dict[str, dict] = {name: {"latencies": [], "errors": 0, "statuses": {}} for name in ("page", "preview")}
    deadline = time.perf_counter() + seconds
    budget = [MAX_REQUESTS]

    async def client(number: int):
        rng = random.Random(seed * 1000 + number)
        while time.perf_counter() < deadline and budget[0] > 0:
            for name, path in (("page", page_url), ("preview", preview_path(preview_url, rng))):
                if time.perf_counter() >= deadline or budget[0] <= 0:
                    return
                budget[0] -= 1
                record = results[name]
                try:
                    status, elapsed = await fetch(port, path, source=client_address(number))
                except (OSError, TimeoutError, ValueError) as exc:
                    record["errors"] += 1
                    key = type(exc).__name__
                    record["statuses"][key] = record["statuses"].get(key, 0) + 1
                    continue
                record["statuses"][status] = record["statuses"].get(status, 0) + 1
                if status != 200:
                    record["errors"] += 1
                record["latencies"].append(elapsed)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    for record in results.values():
        record["seconds"] = elapsed
    return results


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def warm_up(port: int, args) -> None:
    """Let every web worker load what it loads lazily (the sentence model on its first
    preview: seconds each) before the clock starts; stop early on a broken endpoint."""
    rng = random.Random(args.seed)

    async def round_of_requests():
        # As many at once as the load sends, so that every worker process gets some.
        paths = [args.page_url, preview_path(args.preview_url, rng)] * max(1, args.clients // 2)
        return await asyncio.gather(*(fetch(port, path, timeout=180) for path in paths), return_exceptions=True)

    started = time.perf_counter()
    for _ in range(3):
        outcomes = asyncio.run(round_of_requests())
        failures = [
            o if isinstance(o, BaseException) else o[0] for o in outcomes if isinstance(o, BaseException) or o[0] != 200
        ]
        if failures:
            print(f"warning: warm-up answers {failures[:4]}", file=sys.stderr)
    h.log(f"warm-up done in {time.perf_counter() - started:.1f}s")


def serve(args, workdir: Path, database_url: str, cache_url: str) -> tuple[subprocess.Popen, int]:
    port = h.free_port()
    env = h.django_env(
        database_url=database_url,
        CACHE_URL=cache_url,
        PREVIEW_RATE_PER_IP=args.preview_rate,
        SITE_URL=f"http://127.0.0.1:{port}",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        STATIC_ROOT=str(workdir / "static"),
    )
    subprocess.run([h.PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=h.REPO, env=env, check=True)
    proc = h.start_web(workdir, env, port, processes=args.processes, threads=args.threads)
    return proc, port


def main(argv=None) -> int:
    h.stop_on_signals()
    args = parse_args(argv)
    with (
        h.run_directory("signup") as workdir,
        h.ScratchDatabase("signup") as database,
        h.PrivateRedis(workdir) as redis_server,
    ):
        h.setup_django(h.django_env(database_url=database.url))
        from bench import datagen

        now = datagen.now_utc()
        datagen.populate(papers=args.papers, subscribers=args.subscribers, now=now, seed=args.seed)
        from django.db import connections

        connections.close_all()
        server, port = serve(args, workdir, database.url, redis_server.url(1))
        try:
            warm_up(port, args)
            h.log(f"load: {args.clients} clients for {args.seconds:.0f}s against 127.0.0.1:{port}")
            results = h.run_clients(
                load(
                    port,
                    clients=args.clients,
                    seconds=args.seconds,
                    page_url=args.page_url,
                    preview_url=args.preview_url,
                    seed=args.seed,
                )
            )
        finally:
            h.stop_process(server)

    workers = h.web_description(args.processes, args.threads)
    print(
        f"signup load: {args.clients} concurrent clients, {args.seconds:.0f} s, {workers}, "
        f"DEBUG off, PostgreSQL, Redis cache, PREVIEW_RATE_PER_IP={args.preview_rate}, {args.papers} papers, "
        f"{args.subscribers} subscribers, on 127.0.0.1"
    )
    print(h.machine_description())
    print(f"{'endpoint':<9} {'requests':>9} {'rps':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}  statuses")
    total_requests = total_errors = 0
    for name, path in (("page", args.page_url), ("preview", args.preview_url)):
        record = results[name]
        latencies = record["latencies"]
        count = len(latencies) + sum(v for k, v in record["statuses"].items() if not isinstance(k, int))
        total_requests += count
        total_errors += record["errors"]
        print(
            f"{name:<9} {count:>9} {count / record['seconds']:>8.1f} {1000 * percentile(latencies, 0.5):>8.1f} "
            f"{1000 * percentile(latencies, 0.95):>8.1f} {record['errors']:>7}  {record['statuses']}  ({path})"
        )
    seconds = results["page"]["seconds"]
    print(f"{'total':<9} {total_requests:>9} {total_requests / seconds:>8.1f}")
    page_p95 = 1000 * percentile(results["page"]["latencies"], 0.95)
    verdict = "ok" if page_p95 < PAGE_P95_TARGET_MS and total_errors == 0 else "MISSED"
    print(f"target: no errors and page p95 < {PAGE_P95_TARGET_MS:.0f} ms: {verdict}")
    print(f"page p95 {page_p95:.0f} errors {total_errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
