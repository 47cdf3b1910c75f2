"""The web process (``digestsite.web``): uWSGI started with the production settings, and the
app its master loads before forking (``digestsite.web_app``)."""

import gc
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from digestsite import web
from ranking import semantic

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def environment(monkeypatch):
    """The web process's variables, none set unless a test sets them."""
    for name in ("HOST", "PORT", "WEB_CONCURRENCY", "WEB_THREADS", "WEB_ACCESS_LOG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_three_processes_per_core_of_three_threads_unless_set(environment):
    args = web.uwsgi_args()
    assert args[args.index("--processes") + 1] == str(3 * (os.cpu_count() or 1))
    assert args[args.index("--threads") + 1] == "3"
    assert args[args.index("--http-socket") + 1] == "127.0.0.1:8000"
    assert args[args.index("--module") + 1] == "digestsite.web_app:application"
    assert "--die-on-term" in args and "--strict" in args and "--no-orphans" in args


def test_the_environment_sets_address_processes_and_threads_and_extra_options_come_last(environment):
    for name, value in {"HOST": "0.0.0.0", "PORT": "8100", "WEB_CONCURRENCY": "5", "WEB_THREADS": "2"}.items():
        environment.setenv(name, value)
    args = web.uwsgi_args(["--lazy-apps"])
    assert args[args.index("--http-socket") + 1] == "0.0.0.0:8100"
    assert args[args.index("--processes") + 1] == "5"
    assert args[args.index("--threads") + 1] == "2"
    assert args[-1] == "--lazy-apps"


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
@pytest.mark.parametrize("name", ["WEB_CONCURRENCY", "WEB_THREADS", "PORT"])
def test_a_bad_number_stops_it_with_the_name(environment, name, value):
    environment.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        web.uwsgi_args()


def test_the_master_loads_the_model_then_freezes_what_it_loaded(monkeypatch):
    loaded = []
    monkeypatch.setattr(semantic, "load_before_fork", loaded.append)
    monkeypatch.delitem(sys.modules, "digestsite.web_app", raising=False)
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        runpy.run_module("digestsite.web_app")
        assert loaded == [1]  # one compute thread per worker
        assert gc.get_freeze_count() > 10_000  # Django, the app and what they loaded
    finally:
        gc.unfreeze()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own loopback server)
        return response.status


def start_web(env: dict, log_path: Path) -> subprocess.Popen:
    """``python -m digestsite.web`` with ``env`` (its ``PORT`` set), in its own process
    group, once it answers ``/healthz``; its output in ``log_path``."""
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "digestsite.web"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            assert _get(f"http://127.0.0.1:{env['PORT']}/healthz") == 200
            return server
        except OSError:
            if server.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            pytest.fail("the web process did not answer:\n" + log_path.read_text()[-3000:])


def test_it_serves_from_its_workers_and_stops_on_sigterm(tmp_path):
    """As the Procfile starts it: two processes of two threads answer; SIGTERM (honcho's,
    systemd's) stops master and workers, where uWSGI's own default would reload."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "CACHE_"))},
        "DJANGO_SETTINGS_MODULE": "digestsite.settings",
        "DEBUG": "1",
        "VAR_DIR": str(tmp_path),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "2",
    }
    server = start_web(env, tmp_path / "web.log")
    try:
        workers = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)  # idle: at once, not after its workers' mercy
        for pid in workers:
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid), 0)
    finally:
        if server.poll() is None:  # the test failed: master and workers go
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
