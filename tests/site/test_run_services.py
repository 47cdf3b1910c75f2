"""``make run-services``: the Procfile's three processes, and what the launcher says."""

import os
import subprocess
import sys
from pathlib import Path

from honcho.environ import parse_procfile

from devtools import run_services

ROOT = Path(__file__).resolve().parents[2]


def test_the_procfile_runs_web_a_worker_and_beat():
    processes = parse_procfile((ROOT / "Procfile").read_text()).processes

    assert list(processes) == ["web", "worker", "beat"]
    assert processes["web"] == ".venv/bin/python -m digestsite.web"
    assert "celery -A digestsite worker" in processes["worker"]
    assert "celery -A digestsite beat" in processes["beat"]


def test_the_launcher_says_where_each_part_is():
    env = {
        "SITE_URL": "http://127.0.0.1:8000",
        "WEB_CONCURRENCY": "2",
        "WORKER_CONCURRENCY": "2",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/paper_digest",
        "VAR_DIR": "/srv/var",
    }

    text = run_services.where(env)

    assert "web     http://127.0.0.1:8000/  uWSGI, 2 processes" in text
    assert "dashboard http://127.0.0.1:8000/admin/dashboard/" in text
    assert "worker  celery, 2 processes, tasks from redis://127.0.0.1:6379/0" in text
    assert "beat    celery beat" in text
    assert "data    PostgreSQL 127.0.0.1:5432/paper_digest" in text
    assert "mail    /srv/var/outbox/" in text


def test_without_postgresql_it_stops_with_how_to_start_it(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing",
        "VAR_DIR": str(tmp_path),
    }

    launcher = str(ROOT / "devtools" / "run_services.py")
    done = subprocess.run([sys.executable, launcher], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert "run-services: PostgreSQL at 127.0.0.1:1 does not answer" in done.stderr
    assert "Start it" in done.stderr
