"""Benchmark: one weekly issue end to end, against a raw smtplib baseline.

Creates a scratch PostgreSQL database with N subscribers (default 20,000) and M papers
(default 2,000), a private redis-server, an SMTP sink in its own process and two Celery
worker processes; dispatches one weekly issue and waits until every delivery is settled.
Then sends the same number of copies of one of the pipeline's own messages with plain
smtplib over one connection to the same sink: the raw baseline.

Prints the time to dispatch, the workers' time to match and rank, to render and to send,
subscribers per second end to end, peak memory per worker, a separate timing of ranking
5,000 distinct topics against the papers, and as its LAST LINE ``ratio R``: the
pipeline's emails per second over the raw baseline's.

    .venv/bin/python -m bench.pipeline                       # 20,000 subscribers
    .venv/bin/python -m bench.pipeline --subscribers 100000
    .venv/bin/python -m bench.pipeline --memory-check        # 10,000 then 100,000: peak memory ratio

Traffic stays on 127.0.0.1; every wait is bounded; processes and the database are
cleaned up on the way out (BENCH_KEEP_LOGS=1 keeps the logs).
"""

from __future__ import annotations

import argparse
import json
import random
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench import _harness as h
from bench import _workers as w

# What the worker-side timers wrap (see bench/worker_app.py): the names the pipeline's
# modules call each phase by.
PROBES = ",".join(
    [
        "match_and_rank=digests.content:rank_for_subscribers",
        "context=digests.content:digest_context",
        "render=emails:render",
        "rate_limit=digests.ratelimit:_Limiter.acquire",
        "claim_build_send_record=digests.sending:send_one",
        "claim_build_send_record=digests.sending:hand_over",
        "claim_build_send_record=digests.claims:record_sent",
        "build_message=emails.messages:build_message",
        "build_message=emails.messages:SignedEmailMessage.message",
        "build_message=emails.messages:SignedEmailMessage.wire_bytes",
        "build_message=django.core.mail.message:SafeMIMEMultipart.as_bytes",
        "send=emails.smtp:begin",
        "send=emails.smtp:send_final_dot",
        "send=emails.smtp:read_answer",
        "send=django.core.mail.backends.smtp:EmailBackend.send_messages",
    ]
)
RANK_TOPICS = 5000
RANK_TARGET_SECONDS = 10.0
MB = 1024


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Benchmark one weekly issue end to end.")
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--send-rate",
        type=float,
        default=100_000.0,
        help="SEND_RATE_PER_SECOND for the workers: high by default, to measure capacity, not the limit",
    )
    parser.add_argument(
        "--cold-topics",
        action="store_true",
        help="leave topic embeddings to be computed during the issue (a first issue after mass signup)",
    )
    parser.add_argument("--rank-topics", type=int, default=RANK_TOPICS, help="0 skips the ranking measurement")
    parser.add_argument("--no-baseline", action="store_true", help="skip the raw smtplib baseline")
    parser.add_argument(
        "--sink-without-pipelining",
        action="store_true",
        help="the SMTP sink does not advertise PIPELINING (the workers then wait for each reply)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="give up on the issue after this many seconds")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--memory-check", action="store_true", help="run 10,000 then 100,000 subscribers")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def wait_for_issue(*, sink: h.SinkProcess, timeout: float, poll: float = 0.5, count_every: float = 5.0) -> dict:
    """Wait until the issue's deliveries are all settled (none queued or sending).

    The sink is asked every ``poll`` seconds (cheap); the deliveries are counted (a GROUP
    BY over the whole table, PostgreSQL work the pipeline would feel) every
    ``count_every`` seconds, or as soon as the sink has gone quiet. The end-to-end time
    comes from the sink's last acceptance, not from this loop.
    """
    deadline = time.monotonic() + timeout
    last_progress, last_accepted, last_count = time.monotonic(), -1, 0.0
    counts: dict = {}
    while True:
        accepted = sink.summary()["accepted_total"]
        quiet = accepted == last_accepted
        if accepted != last_accepted:
            last_accepted, last_progress = accepted, time.monotonic()
        if quiet or time.monotonic() - last_count >= count_every:
            counts, last_count = h.delivery_status_counts(), time.monotonic()
            h.log(f"  {accepted} emails accepted; deliveries {counts}")
            if counts and sum(counts.get(s, 0) for s in h.OPEN_STATUSES) == 0:
                return counts
        if time.monotonic() > deadline:
            h.log(f"timed out; deliveries {counts}; no progress for {time.monotonic() - last_progress:.0f}s")
            return counts
        time.sleep(poll)


def raw_baseline(sink: h.SinkProcess, message: bytes, recipients: list[str]) -> float:
    """Seconds to send ``message`` once to each recipient with plain smtplib over one connection."""
    sender = "digest@127.0.0.1"
    started = time.perf_counter()
    with smtplib.SMTP(h.HOST, sink.smtp_port, timeout=60) as smtp:
        for recipient in recipients:
            smtp.sendmail(sender, [recipient], message)
    return time.perf_counter() - started


def measure_ranking(*, topics: int, now, seed: int) -> dict:
    """Rank ``topics`` distinct topics (one subscriber each) against the papers, in the
    batches the workers use: cold (no topic has a stored embedding, as after a wave of new
    signups) and warm (the same again, embeddings stored by the first pass)."""
    from django.conf import settings

    from bench import datagen
    from bench.vocabulary import HEAD_TOPICS, all_long_tail_topics
    from digests.matching import rank_for_subscribers
    from ranking import index as paper_index
    from ranking.api import forget_topic_embeddings
    from subscriptions.models import Subscriber

    pool = all_long_tail_topics()
    random.Random(seed).shuffle(pool)
    queries = (HEAD_TOPICS + pool)[:topics]
    datagen.create_subscribers(
        len(queries), now=now, prefix="rank", status="paused", topics=lambda _rng, i: [queries[i]]
    )
    forget_topic_embeddings(queries)
    datagen.analyze(vacuum=True)
    semantic = _semantic()
    if semantic is not None:
        semantic._query_cache.clear()  # this process embedded them while populating
        semantic.get_model()  # loaded once per worker process; not part of ranking
    people = list(Subscriber.objects.filter(email__startswith="rank").order_by("id"))
    batch = settings.DIGEST_BATCH_SIZE
    since = now - timedelta(days=7)
    result = {"topics": len(queries), "batch": batch, "semantic": semantic is not None}
    for name in ("cold", "warm"):
        paper_index.forget_topic_scores()  # both passes score every topic
        started = time.perf_counter()
        matched = 0
        for offset in range(0, len(people), batch):
            ranked = rank_for_subscribers(people[offset : offset + batch], since=since)
            matched += sum(1 for papers in ranked.values() if papers)
        result[f"{name}_seconds"] = time.perf_counter() - started
        result["with_papers"] = matched
        if semantic is not None:
            semantic._query_cache.clear()  # warm means stored in the database, not this process's cache
    return result


def _semantic():
    try:
        from ranking import semantic
    except ImportError:
        return None
    return semantic if semantic.is_available() else None


def run(args) -> dict:
    result: dict = {
        "subscribers": args.subscribers,
        "papers": args.papers,
        "workers": args.workers,
        "pipelining": not args.sink_without_pipelining,
    }
    result["machine_at_start"] = h.machine_description()
    with h.run_directory("pipeline") as workdir:
        database = h.ScratchDatabase("pipeline")
        redis_server = h.PrivateRedis(workdir)
        sink = h.smtp_sink(workdir, pipelining=not args.sink_without_pipelining)
        try:
            database.create()
            redis_server.start()
            sink.start()
            env = h.django_env(
                database_url=database.url,
                broker_url=redis_server.url(0),
                email_url=sink.email_url,
                SEND_RATE_PER_SECOND=args.send_rate,
            )
            h.setup_django(env)
            from bench import datagen

            now = datagen.now_utc()
            started = time.perf_counter()
            result["generate"] = datagen.populate(
                papers=args.papers,
                subscribers=args.subscribers,
                now=now,
                seed=args.seed,
                warm_topics=not args.cold_topics,
            )
            result["generate_seconds"] = time.perf_counter() - started
            result["topic_mix"] = datagen.topic_mix(args.subscribers, seed=args.seed + 1)
            h.log(f"data ready in {result['generate_seconds']:.1f}s: {result['topic_mix']}")

            worker_env = {**env, "BENCH_PROBES": PROBES, "BENCH_PROBE_REDIS": redis_server.url(1)}
            timeout = args.timeout or max(300.0, args.subscribers / 20)
            with w.WorkerPool(args.workers, env=worker_env, workdir=workdir) as workers:
                h.log(f"{args.workers} workers ready; dispatching")
                wall_start = time.time()
                h.dispatch_in_process(now=now, frequency="weekly")
                result["dispatch_seconds"] = time.time() - wall_start
                h.log(f"dispatched in {result['dispatch_seconds']:.2f}s")
                result["statuses"] = wait_for_issue(sink=sink, timeout=timeout)
                workers.sample()
                result["peak_pool_kb"] = [w.peak_pool_kb for w in workers.workers]
                result["peak_main_kb"] = [w.peak_main_kb for w in workers.workers]
            stats = sink.stats()
            probes = redis_server.client(1)
            result["probe_seconds"] = {k.decode(): float(v) for k, v in probes.hgetall("bench:probe:seconds").items()}
            result["probe_calls"] = {k.decode(): int(v) for k, v in probes.hgetall("bench:probe:calls").items()}
            accepted = stats["accepted"]
            result["accepted"] = stats["accepted_total"]
            result["unique_recipients"] = len(accepted)
            result["duplicates"] = sum(n - 1 for n in accepted.values() if n > 1)
            result["bytes_per_email"] = stats["bytes_accepted"] / max(1, stats["accepted_total"])
            last = stats["last_accepted_at"] or wall_start
            result["end_to_end_seconds"] = last - wall_start
            result["send_window_seconds"] = last - (stats["first_accepted_at"] or wall_start)
            result["pipeline_rate"] = stats["accepted_total"] / max(1e-9, result["end_to_end_seconds"])
            result["subscribers_per_second"] = args.subscribers / max(1e-9, result["end_to_end_seconds"])

            if not args.no_baseline and stats["accepted_total"]:
                message = sink.sample()
                (workdir / "sample.eml").write_bytes(message)
                recipients = sorted(accepted)
                sink.reset()
                h.log(f"raw baseline: {len(recipients)} messages of {len(message)} bytes over one connection")
                seconds = raw_baseline(sink, message, recipients)
                result["raw_seconds"] = seconds
                result["raw_rate"] = len(recipients) / seconds
                result["raw_accepted"] = sink.summary()["accepted_total"]
                result["ratio"] = result["pipeline_rate"] / result["raw_rate"]

            if args.rank_topics:
                h.log(f"ranking {args.rank_topics} distinct topics against {args.papers} papers")
                result["ranking"] = measure_ranking(topics=args.rank_topics, now=now, seed=args.seed)
        finally:
            sink.stop()
            redis_server.stop()
            from django.db import connections

            connections.close_all()
            database.drop()
    return result


def report(result: dict) -> list[str]:
    n = result["subscribers"]
    probe = result.get("probe_seconds", {})
    calls = result.get("probe_calls", {})
    wall = result.get("end_to_end_seconds", 0.0)
    mix = result.get("topic_mix", {})
    lines = [
        result.get("machine", ""),
        f"pipeline benchmark: {n} subscribers, {result['papers']} papers, {result['workers']} Celery workers "
        f"(-c 1 prefork), PostgreSQL, private Redis, SMTP sink process "
        f"({'advertises' if result.get('pipelining', True) else 'does not advertise'} PIPELINING), "
        "all on 127.0.0.1",
        f"data: {mix.get('distinct', 0)} distinct topics ({mix.get('followed_by_one', 0)} followed by one person), "
        f"{mix.get('subscriptions', 0)} subscriptions; generated in {result.get('generate_seconds', 0):.1f} s",
        f"time to dispatch               {result.get('dispatch_seconds', 0):8.2f} s wall",
    ]
    phases = [
        ("match and rank", probe.get("match_and_rank"), calls.get("match_and_rank")),
        ("render", _sum(probe, "context", "render"), calls.get("render")),
        ("build message (MIME)", probe.get("build_message"), calls.get("build_message")),
        ("send (SMTP)", probe.get("send"), calls.get("send")),
        ("claim + record (DB)", _claim_and_record(probe), calls.get("claim_build_send_record")),
        ("wait for rate limit", probe.get("rate_limit"), calls.get("rate_limit")),
    ]
    for label, seconds, count in phases:
        if seconds is None:
            lines.append(f"time to {label:<22} {'n/a':>8}   (probe not hit)")
        else:
            lines.append(
                f"time to {label:<22} {seconds:8.2f} s busy in workers, summed "
                f"({1000 * seconds / max(1, n):.2f} ms per subscriber, {count or 0} calls)"
            )
    lines += [
        f"end to end (dispatch to last email) {wall:6.2f} s wall -> {result.get('subscribers_per_second', 0):.0f} "
        f"subscribers/s",
        f"emails accepted by the sink    {result.get('accepted', 0)} to {result.get('unique_recipients', 0)} "
        f"recipients, duplicates {result.get('duplicates', 0)}; {result.get('bytes_per_email', 0) / 1024:.1f} KiB each",
        f"delivery statuses              {json.dumps(result.get('statuses', {}), sort_keys=True)}",
        "peak RSS per worker            pool process "
        + ", ".join(f"{kb / MB:.0f} MiB" for kb in result.get("peak_pool_kb", []))
        + "; main process "
        + ", ".join(f"{kb / MB:.0f} MiB" for kb in result.get("peak_main_kb", [])),
        f"pipeline                       {result.get('pipeline_rate', 0):8.1f} emails/s "
        f"(sending window alone: {result.get('accepted', 0) / max(1e-9, result.get('send_window_seconds', 0)):.1f})",
    ]
    if "raw_rate" in result:
        lines.append(
            f"raw smtplib baseline           {result['raw_rate']:8.1f} emails/s ({result['raw_accepted']} messages "
            f"in {result['raw_seconds']:.1f} s, one connection)"
        )
    if "ranking" in result:
        rk = result["ranking"]
        for name in ("cold", "warm"):
            seconds = rk[f"{name}_seconds"]
            verdict = "ok" if seconds < RANK_TARGET_SECONDS else "OVER TARGET"
            lines.append(
                f"ranking {rk['topics']} distinct topics x {result['papers']} papers, {name:<4}: {seconds:6.2f} s "
                f"in batches of {rk['batch']} (target < {RANK_TARGET_SECONDS:.0f} s: {verdict})"
            )
        mode = "on" if rk["semantic"] else "off"
        lines.append(
            f"  ({rk['with_papers']} of {rk['topics']} got papers; semantic ranking {mode};"
            " cold = no topic embedding stored yet, warm = stored by the cold pass)"
        )
    return lines


def _sum(probe: dict, *names: str) -> float | None:
    found = [probe[name] for name in names if name in probe]
    return sum(found) if found else None


def _claim_and_record(probe: dict) -> float | None:
    """_send_one builds the MIME message and sends it (over SMTP: all but the final dot),
    _hand_over claims a group's rows, writes their dots, commits and reads the answers,
    _record_sent marks them SENT: the DB part is what is left of the three."""
    if "claim_build_send_record" not in probe:
        return None
    return probe["claim_build_send_record"] - probe.get("send", 0.0) - probe.get("build_message", 0.0)


def memory_check(args) -> int:
    """Run 10,000 and 100,000 subscribers in fresh processes and compare peak pool RSS."""
    results = {}
    for size in (10_000, 100_000):
        out = Path(tempfile.mkdtemp(prefix="bench-mem-")) / "result.json"
        command = [
            h.PYTHON,
            "-m",
            "bench.pipeline",
            "--subscribers",
            str(size),
            "--papers",
            str(args.papers),
            "--workers",
            str(args.workers),
            "--json",
            str(out),
            "--rank-topics",
            "0",
        ]
        if size == 10_000 or args.no_baseline:
            command.append("--no-baseline")
        h.log(f"memory check: {' '.join(command[2:])}")
        proc = subprocess.Popen(command, cwd=h.REPO, stdout=sys.stderr)
        try:
            if proc.wait() != 0:
                raise SystemExit(f"{' '.join(command[2:])} failed with {proc.returncode}")
        finally:
            if proc.poll() is None:  # we were stopped: let it clean up after itself
                proc.terminate()
                proc.wait(timeout=120)
        results[size] = json.loads(out.read_text())
    small, large = (max(results[s]["peak_pool_kb"]) for s in (10_000, 100_000))
    for size in (10_000, 100_000):
        print(
            f"{size:>7} subscribers: peak pool RSS {max(results[size]['peak_pool_kb']) / MB:.0f} MiB, "
            f"{results[size]['subscribers_per_second']:.0f} subscribers/s"
        )
    memory_ratio = large / max(1, small)
    print(f"memory 100k/10k {memory_ratio:.2f} (target <= 1.20: {'ok' if memory_ratio <= 1.2 else 'OVER TARGET'})")
    if "ratio" in results[100_000]:
        print(f"ratio {results[100_000]['ratio']:.2f}")
    return 0


def main(argv=None) -> int:
    h.stop_on_signals()
    args = parse_args(argv)
    if args.memory_check:
        return memory_check(args)
    result = run(args)
    result["machine"] = result["machine_at_start"] + "; at the end " + h.machine_description().split("now ")[-1]
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2, default=str)
    for line in report(result):
        print(line)
    if "ratio" in result:
        print(f"ratio {result['ratio']:.2f}")
    elif args.no_baseline:
        print("ratio n/a")  # asked for no baseline: nothing to compare with
    else:
        print("ratio 0.00")  # the issue did not complete: no rate worth comparing
    return 0


if __name__ == "__main__":
    sys.exit(main())
