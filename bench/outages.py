"""Outages for the fault drills of ``bench.faults``: PostgreSQL going away mid-issue, and
the SMTP server refusing connections for a while.

PostgreSQL, two ways:

- ``restart``: the real server restarted (``pg_ctl restart -m fast`` as the postgres
  user): every connection of every database on it drops, and the server is down for the
  restart's few seconds. Only where nobody else uses the server.
- ``backends`` (what the test suite uses): only the drill's scratch database goes away.
  New connections to it are refused (``ALLOW_CONNECTIONS false``) and every open one is
  ended (``pg_terminate_backend``) for ``down_for`` seconds; other databases on the same
  server never notice.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import _harness as h

POSTGRES_MODES = ("restart", "backends")


def _admin(sql: str, *params):
    import psycopg

    with psycopg.connect(h.PG_ADMIN_URL, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall() if sql.lstrip().upper().startswith("SELECT") else None


def _terminate(database: str) -> int:
    rows = _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        database,
    )
    return len(rows or [])


def database_goes_away(database: str, *, down_for: float) -> str:
    """Only ``database``: refuse new connections and end the open ones for ``down_for`` seconds."""
    _admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    try:
        ended = _terminate(database)
        deadline = time.monotonic() + down_for
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(deadline - time.monotonic(), 0)))
            ended += _terminate(database)  # one that was half-way through connecting
    finally:
        _admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    return f"{ended} connections ended, database refused connections for {down_for:.0f} s"


def _pg_ctl_command() -> list[str]:
    rows = _admin(
        "SELECT setting FROM pg_settings WHERE name IN ('data_directory', 'server_version_num') ORDER BY name"
    )
    data_directory, version = (row[0] for row in rows)
    major = int(version) // 10000
    pg_ctl = Path(f"/usr/lib/postgresql/{major}/bin/pg_ctl")
    binary = str(pg_ctl) if pg_ctl.exists() else shutil.which("pg_ctl") or "pg_ctl"
    # The restarted server must not write to (and hold open) this process's pipes: -l.
    log_dir = Path("/var/log/postgresql")
    server_log = log_dir / f"postgresql-{major}-main.log" if log_dir.is_dir() else Path("/tmp/postgresql-restart.log")
    pg_ctl_args = ["-D", data_directory, "-l", str(server_log), "restart", "-m", "fast", "-w"]
    return ["runuser", "-u", "postgres", "--", binary, *pg_ctl_args]


def server_restarts() -> str:
    """The whole PostgreSQL server restarted (every database on it)."""
    command = _pg_ctl_command()
    started = time.monotonic()
    with tempfile.TemporaryFile() as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=120)  # noqa: S603
        output.seek(0)
        said = output.read().decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {said}")
    return f"server restarted in {time.monotonic() - started:.1f} s"


def postgres_outage(database: str, *, mode: str, down_for: float) -> str:
    """One outage as ``mode`` says; afterwards this process's own connections are closed (they
    are dead) so the drill's next query opens a new one."""
    from django.db import connections

    h.log(f"  postgres outage ({mode})")
    note = server_restarts() if mode == "restart" else database_goes_away(database, down_for=down_for)
    connections.close_all()
    return note


def smtp_refuses(sink, *, seconds: float) -> str:
    """The SMTP server's port closes (open connections dropped, new ones refused) for ``seconds``."""
    h.log(f"  SMTP server refuses connections for {seconds:.0f} s")
    sink.refuse_connections(seconds)
    return f"SMTP refused connections for {seconds:.0f} s"
