"""Fault drills: nothing lost, nothing sent twice, whatever breaks mid-issue.

Each drill runs one weekly issue to N subscribers (default 5,000) through two Celery
worker processes, a private redis-server, a scratch PostgreSQL database and the SMTP
sink (its own process), breaks something, lets the system recover, and then counts the
emails each recipient got at the sink:

1. kill     a worker killed with SIGKILL (with its pool process) at five random moments,
            restarted each time;
2. 451      the SMTP server answers 451 to one message in five;
3. 550      the SMTP server answers 550 (at RCPT) for some addresses: those deliveries
            fail and the addresses are suppressed, nobody else is affected;
4. redis    the broker (the private redis-server, no persistence) is killed and restarted
            mid-issue, losing every queued task;
5. twice    the dispatcher (``manage.py send_digests --frequency weekly``) run twice at once;
6. postgres PostgreSQL goes away mid-issue: only the scratch database's connections ended
            and refused for ``--postgres-down`` seconds (``--postgres backends``, the default,
            and what the test suite does), or the real server restarted (``--postgres restart``:
            it drops every database's connections, so only on a machine nobody else uses);
7. smtp     the SMTP server refuses connections for ``--smtp-refuse`` seconds (default 120)
            mid-issue, then takes mail again.

Recovery is what production has: workers redeliver unacknowledged tasks after the
visibility timeout and retry transient failures; when an issue stalls with rows still
open, the drill runs the dispatcher once more as the next hourly beat tick would (it
re-enqueues rows left QUEUED longer than DIGEST_RESCUE_AFTER_SECONDS) and says so.

To keep a drill minutes, not hours, the timing knobs are shortened (printed with the
results): visibility timeout 60 s, task time limit (and so the SENDING lease) 80 s,
retry backoff base 2 s, rescue after 10 s. Semantics are the product's.

Prints a table (drill, due, delivered once, missing, duplicated, notes); the LAST LINE is
``missing M duplicated D`` summed over the drills.

    .venv/bin/python -m bench.faults                    # all seven, 5,000 subscribers each
    .venv/bin/python -m bench.faults --drills 1,4 --subscribers 500
    .venv/bin/python -m bench.faults --subscribers 150 --json out.json   # the test suite's size
    .venv/bin/python -m bench.faults --drills 6,7 --postgres backends --smtp-refuse 20
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo

from bench import _harness as h
from bench import _workers as w
from bench import outages

DRILLS = {1: "kill", 2: "451", 3: "550", 4: "redis", 5: "twice", 6: "postgres", 7: "smtp"}
VISIBILITY_TIMEOUT = 60  # the settings' minimum
SOFT_TIME_LIMIT = 20  # hard limit = soft + 60 = the SENDING lease
RETRY_BASE_SECONDS = 2
RESCUE_AFTER_SECONDS = 10  # production: 30 minutes, and the beat ticks hourly
STALL_SECONDS = 30.0  # no progress this long with rows open: run a beat tick (harmless if early: claims)
MAX_BEAT_TICKS = 5


@dataclass
class DrillResult:
    drill: str
    due: int
    delivered_once: int
    missing: int
    duplicated: int
    notes: list[str] = field(default_factory=list)
    resent_same_id: int = 0  # of the duplicated: every copy carried the same Message-ID
    problems: int = 0  # other broken promises (e.g. a 550 address not suppressed)
    seconds: float = 0.0


class Rig:
    """The services every drill shares: data, a broker, the sink and the workers."""

    def __init__(
        self, *, subscribers: int, papers: int, workers: int, batch_size: int, seed: int, workdir, options=None
    ):
        self.options = options or {}  # the outages' knobs (drills 6 and 7)
        self.subscribers = subscribers
        self.papers = papers
        self.worker_count = workers
        self.batch_size = batch_size
        self.seed = seed
        self.workdir = workdir
        self.database = h.ScratchDatabase("faults")
        self.redis = h.PrivateRedis(workdir)
        self.sink = h.smtp_sink(workdir)
        self.workers: w.WorkerPool | None = None
        self.env: dict = {}
        self.dispatched_at = None

    def __enter__(self):
        try:
            self.database.create()
            self.redis.start()
            self.sink.start()
            self.env = h.django_env(
                database_url=self.database.url,
                broker_url=self.redis.url(0),
                email_url=self.sink.email_url,
                SEND_RATE_PER_SECOND=100_000,
                DIGEST_BATCH_SIZE=self.batch_size,
                CELERY_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT,
                CELERY_TASK_SOFT_TIME_LIMIT=SOFT_TIME_LIMIT,
                DIGEST_RETRY_BASE_SECONDS=RETRY_BASE_SECONDS,
                DIGEST_RESCUE_AFTER_SECONDS=RESCUE_AFTER_SECONDS,
                EMAIL_TIMEOUT=10,
            )
            h.setup_django(self.env)
            from bench import datagen

            now = datagen.now_utc()
            datagen.populate(papers=self.papers, subscribers=self.subscribers, now=now, seed=self.seed)
            self.emails = [datagen.email_for("sub", i) for i in range(self.subscribers)]
            worker_env = {**self.env, "BENCH_RESTORE_INTERVAL": "1"}
            self.workers = w.WorkerPool(self.worker_count, env=worker_env, workdir=self.workdir).start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.workers:
            self.workers.stop()
        self.sink.stop()
        self.redis.stop()
        from django.db import connections

        connections.close_all()
        self.database.drop()

    # ------------------------------------------------------------ between drills

    def reset(self) -> None:
        """A clean slate: no issue, everyone active and due now, empty broker, sink at zero."""
        from digests.models import Delivery, Issue
        from subscriptions.models import Subscriber

        Delivery.objects.all().delete()
        Issue.objects.all().delete()
        Subscriber.objects.filter(email__in=self.emails).update(
            status=Subscriber.Status.ACTIVE, suppressed_at=None, suppression_reason=""
        )
        now = h.time_now()
        for zone in Subscriber.objects.values_list("timezone", flat=True).distinct():
            local = now.astimezone(ZoneInfo(zone))
            Subscriber.objects.filter(timezone=zone).update(weekday=local.weekday(), send_hour=local.hour)
        self.redis.client(0).flushdb()
        self.sink.reset()
        self.sink.configure()

    # ------------------------------------------------------------ running an issue

    def dispatch(self, now=None) -> None:
        self.dispatched_at = now or h.time_now()
        h.dispatch_in_process(now=self.dispatched_at, frequency="weekly")

    def beat_tick(self) -> dict:
        """What the next hourly beat does: the dispatcher again (it re-enqueues rows left
        QUEUED longer than DIGEST_RESCUE_AFTER_SECONDS, shortened for the drills)."""
        result = h.dispatch_in_process(now=h.time_now(), frequency="weekly")
        return result.as_dict() if hasattr(result, "as_dict") else {}

    def open_rows(self) -> int:
        counts = h.delivery_status_counts()
        return sum(counts.get(s, 0) for s in h.OPEN_STATUSES)

    def settle(
        self,
        result: DrillResult,
        *,
        timeout: float,
        during=None,
        stall: float = STALL_SECONDS,
        ticks_max=MAX_BEAT_TICKS,
    ) -> None:
        """Wait until no row is open, running ``during(accepted)`` on each poll and a beat tick
        when nothing has changed for ``stall`` seconds; then wait a little for a late duplicate."""
        from django.db import DatabaseError, connections

        deadline = time.monotonic() + timeout
        last_state, last_change, ticks = None, time.monotonic(), 0
        while time.monotonic() < deadline:
            accepted = self.sink.summary()["accepted_total"]
            if during is not None:
                during(accepted)
            try:
                counts = h.delivery_status_counts()
            except DatabaseError:  # the database is away (drill 6): look again shortly
                connections.close_all()
                time.sleep(0.5)
                continue
            open_rows = sum(counts.get(s, 0) for s in h.OPEN_STATUSES)
            state = (accepted, tuple(sorted(counts.items())))
            if state != last_state:
                last_state, last_change = state, time.monotonic()
            if open_rows == 0:
                break
            if time.monotonic() - last_change > stall and ticks < ticks_max:
                ticks += 1
                tick = self.beat_tick()
                h.log(f"  stalled with {open_rows} open rows {counts}; beat tick {ticks}: {tick}")
                result.notes.append(f"beat tick re-enqueued {tick.get('rescued', '?')}")
                last_change = time.monotonic()
            time.sleep(0.25)
        else:
            result.notes.append(f"TIMED OUT with {self.open_rows()} rows open")
        time.sleep(2.0)  # a redelivered task would show up now

    def count(self, result: DrillResult, *, not_due=()) -> DrillResult:
        stats = self.sink.stats()
        accepted = stats["accepted"]
        excluded = {a.lower() for a in not_due}
        due = [a for a in self.emails if a not in excluded]
        result.due = len(due)
        result.delivered_once = sum(1 for a in due if accepted.get(a, 0) == 1)
        result.missing = sum(1 for a in due if accepted.get(a, 0) == 0)
        result.duplicated = sum(1 for n in accepted.values() if n > 1)
        result.resent_same_id = sum(1 for _r, ids in stats["repeated"] if len(set(ids)) == 1)
        if result.duplicated:
            result.notes.append(
                f"DUPLICATED {result.duplicated} ({result.resent_same_id} resent with the same Message-ID)"
            )
        stray = sum(n for a, n in accepted.items() if a in excluded)
        if stray:
            result.problems += stray
            result.notes.append(f"{stray} emails ACCEPTED for addresses that must not get one")
        counts = h.delivery_status_counts()
        result.notes.append("rows " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        from digests.models import Delivery

        for error in Delivery.objects.filter(status="failed").values_list("last_error", flat=True).distinct()[:3]:
            result.notes.append(f"failed: {error[:120]}")
        if stats["deferred_total"]:
            result.notes.append(f"451s {stats['deferred_total']}")
        return result


# ------------------------------------------------------------ the drills


def drill_kill(rig: Rig, rng: random.Random, *, kills: int = 5, timeout: float) -> DrillResult:
    result = DrillResult("1 kill -9 worker x5", 0, 0, 0, 0)
    due = len(rig.emails)
    # Slow the server a little so five kills and restarts land while mail is flowing.
    rig.sink.configure(delay_ms=2 if due >= 1000 else 40)
    moments = sorted(rng.uniform(0.05, 0.8) * due for _ in range(kills))
    done = []

    def during(accepted):
        if len(done) < kills and accepted >= moments[len(done)]:
            index = rng.randrange(rig.worker_count)
            h.log(f"  SIGKILL worker {index} at {accepted} accepted")
            rig.workers.kill(index, restart=True)
            done.append(accepted)

    rig.dispatch()
    rig.settle(result, timeout=timeout, during=during)
    result.notes.insert(0, f"kills at {', '.join(str(a) for a in done)} accepted")
    return rig.count(result)


def drill_451(rig: Rig, rng: random.Random, *, timeout: float) -> DrillResult:
    result = DrillResult("2 451 one in five", 0, 0, 0, 0)
    rig.sink.configure(fail_every=5)
    rig.dispatch()
    rig.settle(result, timeout=timeout)
    return rig.count(result)


def drill_550(rig: Rig, rng: random.Random, *, timeout: float) -> DrillResult:
    from digests.models import Delivery
    from subscriptions.models import Subscriber

    result = DrillResult("3 550 some addresses", 0, 0, 0, 0)
    rejected = sorted(rng.sample(rig.emails, max(3, len(rig.emails) // 100)))
    rig.sink.configure(reject=rejected, reject_at="rcpt")
    rig.dispatch()
    rig.settle(result, timeout=timeout)
    rig.count(result, not_due=rejected)
    suppressed = Subscriber.objects.filter(email__in=rejected, suppressed_at__isnull=False).count()
    closed = Delivery.objects.filter(subscriber__email__in=rejected, status__in=["failed", "suppressed"]).count()
    attempts = sum(rig.sink.stats()["rejected"].values())
    result.notes.insert(
        0, f"{len(rejected)} rejected: {suppressed} suppressed, {closed} deliveries failed, {attempts} 550s"
    )
    result.problems += (len(rejected) - suppressed) + (len(rejected) - closed)
    return result


def drill_redis(rig: Rig, rng: random.Random, *, timeout: float) -> DrillResult:
    result = DrillResult("4 redis restart", 0, 0, 0, 0)
    due = len(rig.emails)
    rig.sink.configure(delay_ms=2 if due >= 1000 else 40)
    moment = rng.uniform(0.25, 0.6) * due
    done = []

    def during(accepted):
        if not done and accepted >= moment:
            h.log(f"  restarting redis at {accepted} accepted")
            rig.redis.restart(down_for=1.0)
            done.append(accepted)

    rig.dispatch()
    # Tasks lost with Redis leave rows QUEUED with nothing coming for them: after a short
    # quiet spell, the next beat tick is what brings them back.
    rig.settle(result, timeout=timeout, during=during, stall=RESCUE_AFTER_SECONDS + 2.0)
    result.notes.insert(0, f"restarted at {done[0] if done else '-'} accepted")
    return rig.count(result)


def drill_twice(rig: Rig, rng: random.Random, *, timeout: float) -> DrillResult:
    result = DrillResult("5 dispatcher twice", 0, 0, 0, 0)
    rig.dispatched_at = h.time_now()
    first, second = h.dispatch_command(rig.env), h.dispatch_command(rig.env)
    outputs = []
    for proc in (first, second):
        out, _ = proc.communicate(timeout=300)
        outputs.append(out.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"])
    rig.settle(result, timeout=timeout)
    result.notes.insert(0, " | ".join(o[0] for o in outputs))
    return rig.count(result)


def _outage_drill(rig: Rig, rng: random.Random, result: DrillResult, outage, *, timeout: float, **settle):
    """One outage at a random moment a quarter to three fifths into the issue."""
    due = len(rig.emails)
    rig.sink.configure(delay_ms=2 if due >= 1000 else 40)
    moment = rng.uniform(0.25, 0.6) * due
    done = []

    def during(accepted):
        if not done and accepted >= moment:
            done.append(f"at {accepted} accepted: {outage()}")

    rig.dispatch()
    rig.settle(result, timeout=timeout, during=during, **settle)
    result.notes.insert(0, done[0] if done else "NO OUTAGE (the issue ended first)")
    result.problems += not done
    return rig.count(result)


def drill_postgres(rig: Rig, rng: random.Random, *, timeout: float) -> DrillResult:
    mode, down_for = rig.options.get("postgres", "backends"), rig.options.get("postgres_down", 5.0)
    result = DrillResult(f"6 postgres {mode}", 0, 0, 0, 0)

    def outage():
        return outages.postgres_outage(rig.database.name, mode=mode, down_for=down_for)

    # Rows whose claim was cut short wait out their SENDING lease; tasks lost with their
    # retries are brought back by a beat tick.
    stall = RESCUE_AFTER_SECONDS + 2.0
    lease_ticks = int((SOFT_TIME_LIMIT + 60) // stall) + 1
    return _outage_drill(rig, rng, result, outage, timeout=timeout, stall=stall, ticks_max=MAX_BEAT_TICKS + lease_ticks)


def drill_smtp_refuses(rig: Rig, rng: random.Random, *, timeout: float) -> DrillResult:
    seconds = rig.options.get("smtp_refuse", 120.0)
    result = DrillResult(f"7 smtp refuses {seconds:.0f}s", 0, 0, 0, 0)
    # A batch that cannot connect charges no row an attempt; it retries, and once its
    # retries are spent the next beat ticks bring its rows back, as often as the outage needs.
    return _outage_drill(
        rig,
        rng,
        result,
        lambda: outages.smtp_refuses(rig.sink, seconds=seconds),
        timeout=timeout,
        ticks_max=MAX_BEAT_TICKS + int(seconds // STALL_SECONDS),
    )


DRILL_FUNCTIONS = {
    1: drill_kill,
    2: drill_451,
    3: drill_550,
    4: drill_redis,
    5: drill_twice,
    6: drill_postgres,
    7: drill_smtp_refuses,
}


def run_drills(
    *, drills, subscribers: int, papers: int, workers: int, batch_size: int, seed: int, timeout: float, options=None
) -> list[DrillResult]:
    rng = random.Random(seed)
    results = []
    with (
        h.run_directory("faults") as workdir,
        Rig(
            subscribers=subscribers,
            papers=papers,
            workers=workers,
            batch_size=batch_size,
            seed=seed,
            workdir=workdir,
            options=options,
        ) as rig,
    ):
        for number in drills:
            rig.reset()
            h.log(f"drill {number} ({DRILLS[number]}): {subscribers} subscribers")
            started = time.monotonic()
            result = DRILL_FUNCTIONS[number](rig, rng, timeout=timeout)
            result.seconds = time.monotonic() - started
            h.log(
                f"  -> due {result.due} once {result.delivered_once} missing {result.missing} "
                f"duplicated {result.duplicated} in {result.seconds:.0f}s; {'; '.join(result.notes)}"
            )
            results.append(result)
    return results


def table(results: list[DrillResult]) -> list[str]:
    lines = [f"{'drill':<22} {'due':>6} {'delivered once':>15} {'missing':>8} {'duplicated':>11} {'secs':>5}  notes"]
    for r in results:
        lines.append(
            f"{r.drill:<22} {r.due:>6} {r.delivered_once:>15} {r.missing:>8} {r.duplicated:>11} "
            f"{r.seconds:>5.0f}  {'; '.join(r.notes)}"
        )
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Fault drills for the delivery pipeline.")
    parser.add_argument("--drills", default="1,2,3,4,5,6,7", help="comma-separated drill numbers")
    parser.add_argument("--subscribers", type=int, default=5_000)
    parser.add_argument("--papers", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="DIGEST_BATCH_SIZE (default: 100, or 10 below 1,000)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per drill")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--postgres",
        choices=outages.POSTGRES_MODES,
        default="backends",
        help="drill 6: end only the scratch database's connections, or restart the real server",
    )
    parser.add_argument("--postgres-down", type=float, default=5.0, help="drill 6 backends: seconds refused")
    parser.add_argument("--smtp-refuse", type=float, default=120.0, help="drill 7: seconds the SMTP server refuses")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    h.stop_on_signals()
    args = parse_args(argv)
    drills = [int(d) for d in args.drills.split(",") if d.strip()]
    unknown = [d for d in drills if d not in DRILLS]
    if unknown:
        raise SystemExit(f"unknown drills {unknown}; choose from {sorted(DRILLS)}")
    batch = args.batch_size or (100 if args.subscribers >= 1000 else 10)
    results = run_drills(
        drills=drills,
        subscribers=args.subscribers,
        papers=args.papers,
        workers=args.workers,
        batch_size=batch,
        seed=args.seed,
        timeout=args.timeout,
        options={"postgres": args.postgres, "postgres_down": args.postgres_down, "smtp_refuse": args.smtp_refuse},
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([asdict(r) for r in results], handle, indent=2)
    print(
        f"fault drills: {args.subscribers} subscribers per issue, {args.workers} Celery workers (-c 1 prefork), "
        f"batch size {batch}; visibility timeout {VISIBILITY_TIMEOUT} s, task time limit {SOFT_TIME_LIMIT + 60} s, "
        f"retry backoff base {RETRY_BASE_SECONDS} s, rescue after {RESCUE_AFTER_SECONDS} s"
    )
    print(h.machine_description())
    for line in table(results):
        print(line)
    problems = sum(r.problems for r in results)
    if problems:
        print(f"other problems: {problems} (see notes)")
    print(f"missing {sum(r.missing for r in results)} duplicated {sum(r.duplicated for r in results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
