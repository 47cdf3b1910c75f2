"""``make run-services``: the production topology on one machine.

Web (uWSGI), a Celery worker and beat, each its own process from the ``Procfile``
under honcho, against the local PostgreSQL and Redis, with DEBUG off. Before it starts
them it checks that both answer (and says how to start them if not), creates the
database if missing, migrates, collects static files, loads the sample papers and makes
an admin login, then prints where each part is. ``make run`` stays the embedded default.

Every setting can be overridden from the environment (README, "Settings").
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def _defaults() -> dict[str, str]:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var"))
    return {
        "HOST": host,
        "PORT": port,
        "VAR_DIR": str(var_dir),
        "DEBUG": "0",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/paper_digest",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "SITE_URL": f"http://{host}:{port}",
        "WEB_CONCURRENCY": "2",
        "WORKER_CONCURRENCY": "2",
        "SECRET_KEY": _secret_key(var_dir),
    }


def _secret_key(var_dir: Path) -> str:
    """A key of this machine's own, kept in VAR_DIR so links and logins survive a restart."""
    path = var_dir / "run-services-secret-key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _fail(message: str) -> None:
    sys.exit(f"run-services: {message}")


def check_postgres(url: str) -> None:
    """Reachable, and the database exists (created when missing)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(maintenance, connect_timeout=3, autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                connection.execute(f'CREATE DATABASE "{name}"')
                print(f"run-services: created the database {name}")
    except psycopg.Error as exc:
        _fail(
            f"PostgreSQL at {parts.hostname}:{parts.port or 5432} does not answer ({exc}).\n"
            "Start it (Debian: pg_ctlcluster 15 main start) or set DATABASE_URL."
        )


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _fail(f"Redis at {url} does not answer ({exc}).\nStart it (redis-server --daemonize yes) or set {url!r}.")


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, check=True)


def where(env: dict[str, str]) -> str:
    site, database = env["SITE_URL"], urlsplit(env["DATABASE_URL"])
    if env.get("EMAIL_URL"):
        mail = f"SMTP {urlsplit(env['EMAIL_URL']).hostname}"
    else:
        mail = f"{env['VAR_DIR']}/outbox/ (one .eml file per message)"
    return "\n".join(
        [
            "",
            "Paper Digest, production mode on this machine (Ctrl-C stops all three):",
            f"  web     {site}/  uWSGI, {env['WEB_CONCURRENCY']} processes",
            f"          admin {site}/admin/, dashboard {site}/admin/dashboard/",
            f"  worker  celery, {env['WORKER_CONCURRENCY']} processes, tasks from {env['CELERY_BROKER_URL']}",
            f"  beat    celery beat, hourly dispatch and source fetches ({env['VAR_DIR']}/celerybeat-schedule)",
            f"  data    PostgreSQL {database.hostname}:{database.port or 5432}{database.path}",
            f"  cache   {env['CACHE_URL']}",
            f"  mail    {mail}",
            "",
        ]
    )


def main() -> None:
    env = {**os.environ}
    for name, value in _defaults().items():
        env.setdefault(name, value)
    check_postgres(env["DATABASE_URL"])
    check_redis(env["CELERY_BROKER_URL"])
    if env["CACHE_URL"].startswith("redis"):
        check_redis(env["CACHE_URL"])
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    _manage(env, "load_sample_papers")
    _manage(env, "ensure_admin")
    print(where(env), flush=True)
    os.chdir(ROOT)
    honcho = str(BIN / "honcho")
    os.execve(honcho, [honcho, "start", "--procfile", "Procfile", "--port", env["PORT"]], env)  # noqa: S606


if __name__ == "__main__":
    main()
