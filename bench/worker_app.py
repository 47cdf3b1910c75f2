"""The project's Celery app as the bench runs it: unchanged, plus two things for measuring.

- On ``worker_ready`` it touches ``$BENCH_READY_FILE``, and each pool process, once
  initialised (the sentence model loaded), touches ``$BENCH_READY_FILE.pool``: the bench
  starts timing when both exist (no polling with ``celery inspect``).
- ``$BENCH_PROBES`` (``name=module:attribute,...``) wraps those functions in each pool
  process with a timer; after each task the time spent in each is added to a Redis hash
  at ``$BENCH_PROBE_REDIS`` (``bench:probe:seconds`` / ``bench:probe:calls``). This is how
  pipeline.py splits the workers' time into match-and-rank, render and send without a
  line of benchmark code in the product. A target that does not exist is left out.
- ``$BENCH_RESTORE_INTERVAL`` (seconds) makes the Redis transport look for unacknowledged
  messages of dead workers that often instead of about every 100 s (kombu's default sweep),
  so drill 1 waits for the visibility timeout, not for the sweep. It changes no semantics.
"""

import functools
import importlib
import os
import time
from pathlib import Path

from celery.signals import task_postrun, worker_process_init, worker_ready

from digestsite.celery import app  # the app celery -A loads

if os.environ.get("BENCH_RESTORE_INTERVAL"):
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "unacked_restore_interval": float(os.environ["BENCH_RESTORE_INTERVAL"]),
        "unacked_restore_throttle": 1,
        # A worker killed mid-sweep leaves the sweep's mutex for its expiry (300 s by default).
        "unacked_mutex_expire": 3,
    }

_spent: dict[str, float] = {}
_calls: dict[str, int] = {}
_redis = None


@worker_ready.connect
def _announce_ready(**_):
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        Path(path).touch()


def _timed(name, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _spent[name] = _spent.get(name, 0.0) + time.perf_counter() - started
            _calls[name] = _calls.get(name, 0) + 1

    wrapper.__bench_probe__ = True
    return wrapper


def install_probes(spec: str) -> list[str]:
    """Wrap each ``name=module:attribute`` (attribute may be dotted: ``Class.method``)."""
    installed = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, target = item.partition("=")
        module_name, _, attribute = target.partition(":")
        try:
            owner = importlib.import_module(module_name)
            *path, leaf = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            original = getattr(owner, leaf)
        except (ImportError, AttributeError):
            continue
        if getattr(original, "__bench_probe__", False):
            continue
        setattr(owner, leaf, _timed(name, original))
        installed.append(name)
    return installed


@worker_process_init.connect
def _install(**_):
    global _redis
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        Path(path + ".pool").touch()
    spec = os.environ.get("BENCH_PROBES", "")
    url = os.environ.get("BENCH_PROBE_REDIS")
    if not spec or not url:
        return
    import redis

    _redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    install_probes(spec)


@task_postrun.connect
def _flush(**_):
    if _redis is None or not _spent:
        return
    try:
        pipe = _redis.pipeline()
        for name, seconds in _spent.items():
            pipe.hincrbyfloat("bench:probe:seconds", name, seconds)
            pipe.hincrby("bench:probe:calls", name, _calls.get(name, 0))
        pipe.execute()
    except Exception:  # noqa: S110 (a lost sample must not fail the task; drill 4 restarts Redis)
        return
    _spent.clear()
    _calls.clear()
