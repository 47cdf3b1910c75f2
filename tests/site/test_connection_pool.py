"""Web processes (``DATABASE_POOL_SIZE``, set by digestsite.web) keep their PostgreSQL
connections in a pool: request after request uses the same backends instead of opening a
new one each time."""

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

REQUESTS = """
import django
django.setup()
from django.core.signals import request_finished, request_started
from django.db import connection
backends = set()
for _ in range(12):  # as Django runs requests: connections are closed (given back) after each
    request_started.send(sender=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backends.add(cursor.fetchone()[0])
    request_finished.send(sender=None)
print(len(backends))
"""


def _backends_used(database_url: str, **extra) -> int:
    environment = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    environment.update(DJANGO_SETTINGS_MODULE="digestsite.settings", DEBUG="1", DATABASE_URL=database_url, **extra)
    result = subprocess.run(
        [sys.executable, "-c", REQUESTS], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def _postgres_url() -> str:
    """The suite's PostgreSQL server, or the machine's (the test only reads a backend's pid)."""
    if connection.vendor == "postgresql":
        settings = connection.settings_dict
        return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/postgres"
    return os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def test_requests_share_pooled_connections_on_postgresql():
    url = _postgres_url()
    assert _backends_used(url, CONN_MAX_AGE="0") == 12  # a new backend for every request
    assert _backends_used(url, CONN_MAX_AGE="0", DATABASE_POOL_SIZE="2") <= 2  # at most the pool


def test_the_pool_setting_leaves_sqlite_alone(tmp_path):
    code = "import django; django.setup(); from django.conf import settings as s; print(s.DATABASES['default'])"
    environment = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    environment.update(
        DJANGO_SETTINGS_MODULE="digestsite.settings", DEBUG="1", VAR_DIR=str(tmp_path), DATABASE_POOL_SIZE="8"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "sqlite3" in result.stdout and "'pool'" not in result.stdout
