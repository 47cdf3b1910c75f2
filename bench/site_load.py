"""Load test: the public site (pages app) over two years of papers, 50 concurrent clients.

Serves the app production-style (uWSGI as ``python -m digestsite.web`` starts it,
DEBUG off, collectstatic, WhiteNoise, a private redis-server as ``CACHE_URL``) over a
scratch PostgreSQL database holding 100,000 papers first seen over the last two years
(``bench/site_data.py``), then runs 50 concurrent clients for 30 seconds. Each client, with
no think time, asks for one page after another, drawn at random: the home page (the latest
day), a day page (any of the two years' days), a paper page (any paper: its "similar
papers" are rarely cached), one of 20 realistic searches (``site_data.SEARCHES``), the
Atom feeds (trending, or one of the searches) and the JSON API (one of the searches).

Before the load, each of the 20 searches is run once, one at a time, on the quiet
server: **search, uncached** is what a search nobody made in the last
``SEARCH_CACHE_SECONDS`` costs. Under load the same 20 come back, as popular searches
do, mostly from the shared cache (``--search-cache-seconds 0`` turns it off).

The load runs twice. **Cold**: the first ``--seconds`` after a deploy or a cache flush,
every page made afresh the first time it is asked for (a tenth of the day requests make
their day's page). Then a day's import through the importers' path (``upsert_papers``:
``--import-papers`` new papers for the latest day, new upvotes for the papers of the three
days before it, their embeddings and similar papers as the import's receivers and task
leave them), and **after an import**: the next ``--seconds``, the site as readers meet it
every day, the pages the import changed made again (the latest day and the days beside
it, the searches, feeds and paper pages), the other days' pages kept
(``pages.day_marks``). The targets are judged on each.

Prints requests, rps, p50 and p95 latency (connect to last byte, a fresh connection per
request) and errors (non-200 answers, failed or timed-out connections) per page.
``--server-times`` also logs each request's time inside the server (an access log,
``WEB_ACCESS_LOG``, which production does not keep and which costs the server more CPU)
and prints its p50 and p95 per page ("nan" without it).
Targets: home, day and paper pages p95 < 100 ms; search p95 < 300 ms; no errors.

    .venv/bin/python -m bench.site_load [--clients 50] [--seconds 30] [--papers 100000]
    .venv/bin/python -m bench.site_load --keep            # keep the scratch database (prints its URL)
    .venv/bin/python -m bench.site_load --database URL    # reuse a kept one: no data made, nothing dropped
    .venv/bin/python -m bench.site_load --mix home=1      # one kind of page only (here: a kept page)
    .venv/bin/python -m bench.site_load --server-times    # and the time inside the server (access log)

The last line is ``home p95 MS day p95 MS paper p95 MS search p95 MS errors E`` after the import.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import resource
import subprocess
import sys
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path

from bench import _harness as h
from bench.signup_load import client_address, fetch, percentile

TARGETS_MS = {"home": 100.0, "day": 100.0, "paper": 100.0, "search": 300.0}
MIX = {"home": 20, "day": 25, "paper": 25, "search": 15, "feed": 8, "api": 7}
MAX_REQUESTS = 1_000_000  # a bound on the loop whatever the duration


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Load-test the public site: days, papers, search, feeds, API.")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--processes", type=int, default=None, help="override WEB_CONCURRENCY (digestsite.web)")
    parser.add_argument("--threads", type=int, default=None, help="override WEB_THREADS (digestsite.web)")
    parser.add_argument("--search-cache-seconds", type=int, default=300, help="SEARCH_CACHE_SECONDS of the server")
    parser.add_argument("--alone", type=int, default=10, help="requests of each kind one at a time before the load")
    parser.add_argument(
        "--mix",
        type=_mix,
        default=MIX,
        help="the pages' shares under load, e.g. home=1 for kept pages only (default: " + _mix_text(MIX) + ")",
    )
    parser.add_argument(
        "--server-times",
        action="store_true",
        help="log each request's time inside the server (an access log, which production "
        "does not keep: more server CPU) and print its p50 and p95",
    )
    parser.add_argument("--import-papers", type=int, default=137, help="new papers the import between the runs brings")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and print its URL")
    parser.add_argument("--database", help="use this database (made by an earlier --keep run) as it is")
    return parser.parse_args(argv)


def _mix_text(mix: dict) -> str:
    return ",".join(f"{kind}={weight}" for kind, weight in mix.items())


def _mix(text: str) -> dict:
    """``home=20,day=25,...``: kinds of ``MIX`` and their weights."""
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in MIX or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(f"{part!r}: want KIND=WEIGHT, KIND one of {', '.join(MIX)}")
        mix[kind.strip()] = int(weight)
    return mix


class Paths:
    """What clients ask for, drawn from the data in the database."""

    def __init__(self):
        from django.db.models import Max, Min

        from bench.site_data import SEARCHES
        from papers.models import Paper, listing_day

        day = listing_day()
        bounds = Paper.objects.aggregate(low=Min("id"), high=Max("id"), first=Min(day), last=Max(day))
        self.low, self.high = bounds["low"], bounds["high"]
        self.first_day = bounds["first"]
        self.day_count = (bounds["last"] - self.first_day).days + 1
        self.searches = [urllib.parse.quote_plus(q) for q in SEARCHES]

    def draw(self, kind: str, rng: random.Random) -> str:
        if kind == "home":
            return "/"
        if kind == "day":
            return f"/papers/date/{self.first_day + timedelta(days=rng.randrange(self.day_count)):%Y-%m-%d}/"
        if kind == "paper":
            return f"/papers/{rng.randint(self.low, self.high)}/"
        query = rng.choice(self.searches)
        if kind == "search":
            return f"/search?q={query}"
        if kind == "api":
            return f"/api/papers?q={query}&limit=20"
        return "/feeds/trending.atom" if rng.random() < 0.5 else f"/feeds/search.atom?q={query}"


async def load(port: int, paths: Paths, *, clients: int, seconds: float, seed: int, mix: dict = MIX) -> dict:
    kinds, weights = list(mix), list(mix.values())
    results = {kind: {"latencies": [], "errors": 0, "statuses": {}} for kind in MIX}
    deadline = time.perf_counter() + seconds
    budget = [MAX_REQUESTS]

    async def client(number: int):
        rng = random.Random(seed * 1000 + number)
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            kind = rng.choices(kinds, weights)[0]
            record = results[kind]
            try:
                status, elapsed = await fetch(port, paths.draw(kind, rng), source=client_address(number))
            except (OSError, TimeoutError, ValueError) as exc:
                record["errors"] += 1
                record["statuses"][type(exc).__name__] = record["statuses"].get(type(exc).__name__, 0) + 1
                continue
            record["statuses"][status] = record["statuses"].get(status, 0) + 1
            record["errors"] += status != 200
            record["latencies"].append(elapsed)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    for record in results.values():
        record["seconds"] = time.perf_counter() - started
    return results


def server_cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU seconds (user + system) the web process's master and its workers have used so far."""
    import os

    total = 0
    for pid in (proc.pid, *h.child_pids(proc.pid)):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def prime(port: int, paths: Paths) -> None:
    """The 20 searches' API answers and feeds once each: the load measures a site whose popular
    searches are cached (as they are in production within ``SEARCH_CACHE_SECONDS``); what an
    uncached search costs is ``cold_searches``'s line."""

    async def all_of_them():
        wanted = ["/feeds/trending.atom"]
        for query in paths.searches:
            wanted += [f"/api/papers?q={query}&limit=20", f"/feeds/search.atom?q={query}"]
        return await asyncio.gather(*(fetch(port, p, timeout=180) for p in wanted), return_exceptions=True)

    asyncio.run(all_of_them())


def one_at_a_time(port: int, paths: Paths, count: int, server: subprocess.Popen) -> dict[str, tuple[list, float]]:
    """Each kind of page ``count`` times, one request at a time: what a page costs alone,
    in time and in the server's CPU (per request: the other tenants of the machine slow
    the first, not the second)."""
    rng = random.Random(1)
    alone = {}
    for kind in MIX:
        latencies = []
        cpu_before = server_cpu_seconds(server)
        for _ in range(count):
            status, elapsed = asyncio.run(fetch(port, paths.draw(kind, rng), timeout=60))
            if status == 200:
                latencies.append(elapsed)
        alone[kind] = (latencies, (server_cpu_seconds(server) - cpu_before) / count)
    return alone


def cold_searches(port: int) -> list[tuple[str, int, float]]:
    """Each of the 20 searches once, one at a time, before anything cached them."""
    from bench.site_data import SEARCHES

    timings = []
    for query in SEARCHES:
        status, elapsed = asyncio.run(fetch(port, f"/search?q={urllib.parse.quote_plus(query)}", timeout=60))
        timings.append((query, status, elapsed))
    return timings


def warm_up(port: int, paths: Paths, clients: int) -> None:
    """Every web process serves each kind of page once (templates, the sentence model's
    first run) before the clock starts; searches are left cold for ``cold_searches``."""

    async def round_of_requests():
        rng = random.Random(0)
        wanted = [paths.draw(kind, rng) for kind in ("home", "day", "paper") for _ in range(max(1, clients // 6))]
        return await asyncio.gather(*(fetch(port, p, timeout=180) for p in wanted), return_exceptions=True)

    for _ in range(2):
        outcomes = asyncio.run(round_of_requests())
        bad = [
            o if isinstance(o, BaseException) else o[0] for o in outcomes if isinstance(o, BaseException) or o[0] != 200
        ]
        if bad:
            print(f"warning: warm-up answers {bad[:4]}", file=sys.stderr)


def serve(args, workdir: Path, database_url: str, cache_url: str) -> tuple[subprocess.Popen, int]:
    port = h.free_port()
    env = h.django_env(
        database_url=database_url,
        CACHE_URL=cache_url,
        SITE_URL=f"http://127.0.0.1:{port}",
        STATIC_ROOT=str(workdir / "static"),
        # The bench measures capacity: its clients ask faster than a person may (60 and 120 a minute).
        SEARCH_RATE_PER_IP="1000000/m",
        API_RATE_PER_IP="1000000/m",
        SEARCH_CACHE_SECONDS=args.search_cache_seconds,
    )
    subprocess.run([h.PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=h.REPO, env=env, check=True)
    if args.server_times:
        # Each request's time inside the server (microseconds, from reading the request to the
        # response written): the server's share of the latency, without the wait in the listen queue.
        env["WEB_ACCESS_LOG"] = str(workdir / "access.log")
    proc = h.start_web(workdir, env, port, processes=args.processes, threads=args.threads)
    return proc, port


@contextlib.contextmanager
def database(args, cache_url: str):
    """A scratch database filled with papers, or the one ``--database`` names, as it is
    (until the import between the runs: ``--database`` then keeps its papers)."""
    if args.database:
        h.setup_django(h.django_env(database_url=args.database, CACHE_URL=cache_url))
        yield args.database
        return
    with h.ScratchDatabase("site", keep=args.keep) as scratch:
        h.setup_django(h.django_env(database_url=scratch.url, CACHE_URL=cache_url))
        from django.db import connection

        from bench import datagen, site_data

        started = time.perf_counter()
        made = site_data.create_papers(args.papers, now=datagen.now_utc(), days=args.days, seed=args.seed)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE papers_paper")  # as autovacuum would after a bulk load
        h.log(f"{made} papers over {args.days} days in {time.perf_counter() - started:.0f}s")
        if args.keep:
            h.log(f"database kept: {scratch.url}")
        yield scratch.url


def import_a_day(count: int, seed: int) -> tuple[int, int, float]:
    """What a day's import of the trending list does, through the importers' path: ``count``
    new papers for a new day after the latest, new upvotes for the papers of the three days
    before it.
    Its receivers embed the new papers and, once it commits, mark the days it changed and
    move the pages version (in this process, on the web processes' cache); the task finds
    the new papers' similar papers (run here: no broker). Returns (new, changed, seconds)."""
    from django.db.models import Max

    from bench import site_data
    from papers.importers.base import PaperRecord
    from papers.models import Paper
    from papers.services import upsert_papers

    started = time.perf_counter()
    latest = Paper.objects.aggregate(latest=Max("announced_on"))["latest"]
    rng = random.Random(seed)
    records = [site_data.new_record(rng, latest + timedelta(days=1), number) for number in range(count)]
    recent = Paper.objects.filter(announced_on__gt=latest - timedelta(days=3), announced_on__lte=latest)
    for arxiv_id, title, upvotes in recent.values_list("arxiv_id", "title", "upvotes"):
        records.append(PaperRecord(title=title, arxiv_id=arxiv_id, upvotes=upvotes + rng.randint(1, 20)))
    result = upsert_papers(records, source="bench-import")
    return result.created, result.updated, time.perf_counter() - started


def kind_of(path: str) -> str:
    if path == "/":
        return "home"
    if path.startswith("/papers/date/"):
        return "day"
    if path.startswith("/papers/"):
        return "paper"
    return {"/search": "search", "/api/papers": "api"}.get(path, "feed")


def server_times(log: Path, skip_lines: int) -> dict[str, list[float]]:
    """Seconds each request of the load spent in the server, by page (the access log's lines
    after ``skip_lines``, those of the warm-up and the requests made one at a time); none
    without ``--server-times``."""
    times: dict[str, list[float]] = {}
    if not log.exists():
        return times
    with open(log) as handle:
        for number, line in enumerate(handle):
            fields = line.split()  # digestsite.web.ACCESS_LOG_FORMAT: address, method, URL, ..., microseconds
            if number >= skip_lines and len(fields) >= 4 and fields[-1].isdigit():
                times.setdefault(kind_of(fields[2].split("?", 1)[0]), []).append(int(fields[-1]) / 1e6)
    return times


def log_lines(log: Path) -> int:
    with contextlib.suppress(OSError), open(log) as handle:
        return sum(1 for _ in handle)
    return 0


def own_cpu_seconds() -> float:
    """CPU seconds this process (the clients) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report_start(args, cold: list, alone: dict) -> None:
    described = h.web_description(args.processes, args.threads)
    print(
        f"site load: {args.clients} concurrent clients, {args.seconds:.0f} s twice (cold, then after an import), "
        f"{described}, DEBUG off, PostgreSQL, Redis cache, SEARCH_CACHE_SECONDS={args.search_cache_seconds}, "
        f"{args.papers} papers over {args.days} days, on 127.0.0.1"
    )
    print(h.machine_description())
    cold_ms = [1000 * elapsed for _q, _s, elapsed in cold]
    each = ", ".join(f"{query!r} {ms:.0f}" for (query, _s, _e), ms in zip(cold, cold_ms, strict=True))
    statuses = sorted({status for _q, status, _e in cold})
    print(
        f"search, uncached, one at a time: p50 {percentile(cold_ms, 0.5):.0f} ms, "
        f"p95 {percentile(cold_ms, 0.95):.0f} ms, max {max(cold_ms):.0f} ms, statuses {statuses} ({each})"
    )
    print(
        f"one at a time ({args.alone} each, median ms / server CPU ms per request): "
        + ", ".join(
            f"{kind} {percentile([1000 * s for s in values], 0.5):.0f} / {1000 * cpu:.1f}"
            for kind, (values, cpu) in alone.items()
        )
    )


def report_run(args, title: str, run: dict) -> dict[str, float]:
    """One run's table and verdict; returns its p95 per page with a target, and errors."""
    results, cpu, clients_cpu, inside = run["results"], run["cpu"], run["clients_cpu"], run["inside"]
    requests = sum(len(r["latencies"]) for r in results.values())
    print(f"\n{title}")
    print(
        f"server CPU under load: {cpu:.1f} s over {requests} requests, {1000 * cpu / max(requests, 1):.1f} ms each "
        f"(the machine's other tenants are not in it; their load is the load average above); "
        f"the clients' own CPU {1000 * clients_cpu / max(requests, 1):.2f} ms each"
    )
    print(
        f"{'page':<8} {'requests':>9} {'rps':>7} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}"
        f" {'server p50':>10} {'server p95':>10}  statuses"
    )
    errors = 0
    for kind, record in results.items():
        if kind not in args.mix:
            continue
        latencies = [1000 * s for s in record["latencies"]]
        count = len(latencies) + sum(v for k, v in record["statuses"].items() if not isinstance(k, int))
        errors += record["errors"]
        server = [1000 * s for s in inside.get(kind, [])]
        print(
            f"{kind:<8} {count:>9} {count / record['seconds']:>7.1f} {percentile(latencies, 0.5):>8.1f} "
            f"{percentile(latencies, 0.95):>8.1f} {record['errors']:>7} {percentile(server, 0.5):>10.1f} "
            f"{percentile(server, 0.95):>10.1f}  {record['statuses']}"
        )
    p95 = {kind: percentile([1000 * s for s in results[kind]["latencies"]], 0.95) for kind in TARGETS_MS}
    met = all(p95[kind] < target for kind, target in TARGETS_MS.items()) and errors == 0
    targets = ", ".join(f"{kind} p95 < {target:.0f} ms" for kind, target in TARGETS_MS.items())
    print(f"targets ({title.split(':')[0]}): {targets}, no errors: {'met' if met else 'MISSED'}")
    return {**p95, "errors": errors}


def measured_load(args, port: int, paths: Paths, server: subprocess.Popen, workdir: Path) -> dict:
    """One load of ``args.seconds``: its results, the server's and the clients' CPU seconds,
    and the time inside the server (``--server-times``)."""
    h.log(f"load: {args.clients} clients for {args.seconds:.0f}s against 127.0.0.1:{port}")
    cpu_before, lines_before = server_cpu_seconds(server), log_lines(workdir / "access.log")
    clients_before = own_cpu_seconds()
    results = h.run_clients(load(port, paths, clients=args.clients, seconds=args.seconds, seed=args.seed, mix=args.mix))
    return {
        "results": results,
        "cpu": server_cpu_seconds(server) - cpu_before,
        "clients_cpu": own_cpu_seconds() - clients_before,
        "inside": server_times(workdir / "access.log", lines_before),
    }


def main(argv=None) -> int:
    h.stop_on_signals()
    args = parse_args(argv)
    with (
        h.run_directory("site") as workdir,
        h.PrivateRedis(workdir) as redis_server,
        database(args, redis_server.url(1)) as database_url,
    ):
        paths = Paths()
        from django.conf import settings
        from django.db import connections

        connections.close_all()
        server, port = serve(args, workdir, database_url, redis_server.url(1))
        try:
            warm_up(port, paths, args.clients)
            cold = cold_searches(port)
            prime(port, paths)
            alone = one_at_a_time(port, paths, args.alone, server)
            first = measured_load(args, port, paths, server, workdir)
            created, changed, seconds = import_a_day(args.import_papers, args.seed)
            connections.close_all()
            h.log(f"import: {created} new papers, {changed} with new upvotes, {seconds:.1f}s")
            time.sleep(2 * settings.PAGE_VERSION_CHECK_SECONDS)  # every web process has read the new version
            second = measured_load(args, port, paths, server, workdir)
        finally:
            h.stop_process(server)
    report_start(args, cold, alone)
    report_run(args, "cold: the first load after a deploy or a cache flush, every page made afresh", first)
    imported = f"{created} new papers for a new day, {changed} papers of the 3 days before with new upvotes"
    after = report_run(args, f"after an import: {imported}, the pages it changed made again", second)
    print(" ".join(f"{kind} p95 {after[kind]:.0f}" for kind in TARGETS_MS) + f" errors {after['errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
