"""What the benchmark and drill scripts share: scratch services on loopback and process care.

Everything here binds 127.0.0.1, starts its processes in sessions of their own (so a
SIGKILL reaches a worker and its pool children together) and stops them on exit;
every wait is bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.smtp_sink import SinkProcess

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"


def _pg_admin_url() -> str:
    """The server to make scratch databases on: BENCH_PG_URL, else DATABASE_URL's server when
    that is PostgreSQL (as in CI), else the local default; always its ``postgres`` database."""
    url = os.environ.get("BENCH_PG_URL")
    if url:
        return url
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        return database_url.split("?", 1)[0].rsplit("/", 1)[0] + "/postgres"
    return "postgres://postgres@127.0.0.1:5432/postgres"


PG_ADMIN_URL = _pg_admin_url()
CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR", str(REPO / "var" / "bench-cache")))
BENCH_SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def stop_on_signals() -> None:
    """Turn SIGTERM (and SIGINT, which a shell ignores in background jobs) into SystemExit, so
    every ``finally`` runs: workers, servers and the scratch database go away with the script."""

    def leave(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)


def log(message: str) -> None:
    """Progress goes to stderr so stdout keeps only the results (and its last line)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_clients(coroutine):
    """Run the load's clients on uvloop: the clients share the machine's cores with the
    server they measure, and uvloop spends about a third less CPU per request than
    asyncio's own loop (0.25 against 0.37 ms in ``bench/site_load.py``), which leaves that
    much more to the server, as clients on other machines would (``bench/README.md``)."""
    import asyncio

    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            result = predicate()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def stop_process(proc: subprocess.Popen | None, *, timeout: float = 10.0, sig=signal.SIGTERM) -> None:
    """Signal a process started with ``start_new_session=True`` and its group; SIGKILL after ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def start_web(workdir: Path, env: dict, port: int, *, processes=None, threads=None, extra=()) -> subprocess.Popen:
    """The production web process (``python -m digestsite.web``: uWSGI) on ``port``, its
    processes and threads overridden where given; its log in ``workdir/web.log``."""
    env = {**env, "HOST": HOST, "PORT": str(port)}
    if processes:
        env["WEB_CONCURRENCY"] = str(processes)
    if threads:
        env["WEB_THREADS"] = str(threads)
    log = open(workdir / "web.log", "ab")  # noqa: SIM115 (kept for the process)
    command = [PYTHON, "-m", "digestsite.web", *extra]
    proc = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=120, what="the web process")
    if proc.poll() is not None:
        raise RuntimeError(f"the web process exited: {(workdir / 'web.log').read_text()[-2000:]}")
    return proc


def web_description(processes=None, threads=None) -> str:
    """What ``start_web`` runs: the production settings (``digestsite.web``) and any overrides."""
    from digestsite import web

    overridden = " (overridden)" if processes or threads else ""
    processes, threads = processes or web.processes(), threads or web.threads()
    return f"uWSGI, digestsite.web{overridden}: {processes} processes x {threads} threads"


# ---------------------------------------------------------------- memory (from /proc)


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


def peak_rss_kb(pid: int) -> int:
    """The peak resident set size (VmHWM) of a live process, in KiB; 0 once it is gone."""
    return _status_kb(pid, "VmHWM")


def child_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


# ---------------------------------------------------------------- PostgreSQL


def _pg_url(base: str, dbname: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + dbname


class ScratchDatabase:
    """A PostgreSQL database made for one run (``bench_<purpose>_<pid>``), migrated, then dropped."""

    def __init__(self, purpose: str, *, keep: bool = False):
        self.name = f"bench_{purpose}_{os.getpid()}"
        self.url = _pg_url(PG_ADMIN_URL, self.name)
        self.keep = keep

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> ScratchDatabase:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.name}"')
        log(f"created database {self.name}; migrating")
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO,
            env=django_env(database_url=self.url),
            check=True,
        )
        return self

    def drop(self) -> None:
        if self.keep:
            log(f"keeping database {self.name}")
            return
        with contextlib.suppress(Exception):
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.drop()


def django_env(*, database_url: str, broker_url: str | None = None, email_url: str | None = None, **extra) -> dict:
    """The environment for a Django/Celery process of the bench: production-style settings on loopback."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "EMAIL_", "REDIS_", "DATABASE_", "CACHE_"))
    }
    env.update(
        DEBUG="0",
        SECRET_KEY=BENCH_SECRET_KEY,
        SITE_URL="http://127.0.0.1:8000",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        LOG_FORMAT="plain",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="digestsite.settings",
        PYTHONUNBUFFERED="1",
    )
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    if email_url:
        env["EMAIL_URL"] = email_url
    env.update({key: str(value) for key, value in extra.items()})
    return env


def setup_django(env: dict) -> None:
    """Configure Django in this process from ``env`` (once, before any model import)."""
    os.environ.update(env)
    for key in ("CELERY_BROKER_URL", "EMAIL_URL", "REDIS_URL"):
        if key not in env:
            os.environ.pop(key, None)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


# ---------------------------------------------------------------- Redis (private server)


class _HelperProcess:
    """A process the bench starts (a server, the sink) in its own session, logging into
    the run folder; a context manager that stops it."""

    workdir: Path
    proc: subprocess.Popen | None = None

    def _spawn(self, command: list[str], log_name: str, **popen) -> None:
        logfile = open(self.workdir / log_name, "ab")  # noqa: SIM115 (kept open for the process)
        self.proc = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True, **popen)

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PrivateRedis(_HelperProcess):
    """A redis-server of the bench's own on a free loopback port, never the machine's shared one.

    No persistence (``--save "" --appendonly no``): a restart loses every queued message,
    which is what drill 4 is about.
    """

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.restarts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    def start(self) -> PrivateRedis:
        self._spawn(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
            ],
            f"redis-{self.port}.log",
        )
        wait_until(self.ping, timeout=15, what=f"redis-server on port {self.port}")
        return self

    def ping(self) -> bool:
        import redis

        return bool(redis.Redis(host=HOST, port=self.port, socket_connect_timeout=0.5).ping())

    def client(self, db: int = 0):
        import redis

        return redis.Redis(host=HOST, port=self.port, db=db, socket_connect_timeout=2, socket_timeout=10)

    def restart(self, *, down_for: float = 1.0) -> None:
        """Kill the server (losing everything in it) and start it again on the same port."""
        stop_process(self.proc, sig=signal.SIGKILL)
        time.sleep(down_for)
        self.restarts += 1
        self.start()


# ---------------------------------------------------------------- SMTP sink (own process)


def smtp_sink(workdir: Path, *, pipelining: bool = True) -> SinkProcess:
    """The counting SMTP sink (``devtools.smtp_sink``) in its own process, on free ports."""
    return SinkProcess(workdir, smtp_port=free_port(), control_port=free_port(), pipelining=pipelining)


@contextlib.contextmanager
def run_directory(prefix: str):
    """A temporary folder for logs and pid files; kept (and named) when BENCH_KEEP_LOGS is set."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP_LOGS"):
            log(f"logs kept in {path}")
        else:
            import shutil

            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- the delivery pipeline, as the bench drives it
# The few places that know the pipeline's API (digests.dispatch / send_digests), kept
# together so a change there is a change here only.

TERMINAL_STATUSES = ("sent", "failed", "skipped", "suppressed")
OPEN_STATUSES = ("queued", "sending")


def dispatch_in_process(*, now, frequency: str = "weekly", force: bool = False):
    """Run the dispatcher here (it creates the issue's Delivery rows and enqueues the batches)."""
    from digests import dispatch, tasks

    return dispatch.dispatch_due(enqueue=tasks.enqueue_deliveries, frequency=frequency, now=now, force=force)


def dispatch_command(env: dict, *, frequency: str = "weekly") -> subprocess.Popen:
    """Start ``manage.py send_digests`` as its own process (for running it twice at once)."""
    return subprocess.Popen(
        [PYTHON, "manage.py", "send_digests", "--frequency", frequency],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def time_now():
    from django.utils import timezone

    return timezone.now()


def issues() -> list:
    from digests.models import Issue

    return list(Issue.objects.order_by("created_at", "id"))


def delivery_status_counts() -> dict[str, int]:
    """Delivery rows by status over the whole (scratch) database: an issue may span periods
    when subscribers' local days fall in different weeks."""
    from django.db.models import Count

    from digests.models import Delivery

    return dict(Delivery.objects.order_by().values_list("status").annotate(n=Count("id")))


def machine_description() -> str:
    """Cores, memory, CPU model, versions and the load average: numbers mean little without them."""
    import platform

    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        memory_gib = int(handle.readline().split()[1]) / 1024 / 1024
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    redis_version = next((part[2:] for part in redis_version if part.startswith("v=")), "?")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, Python {platform.python_version()}, "
        f"Redis {redis_version}; load average now {load}"
    )
