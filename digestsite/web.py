"""The web process: the app under uWSGI (``pyuwsgi``), started with the settings below.

    python -m digestsite.web [more uWSGI options]      # the Procfile's web line

``HOST`` and ``PORT`` say where it listens (127.0.0.1:8000), ``WEB_CONCURRENCY`` how many
processes (three per core), ``WEB_THREADS`` how many threads each (3), ``WEB_ACCESS_LOG`` a
file for an access log (none unless set); a bad value stops it with the variable's name
(``digestsite.env``).
Why these settings (measured with ``bench/site_load.py`` and ``bench/signup_load.py``;
``bench/README.md``):

- **uWSGI, not gunicorn**: serving a request costs the server much less of its own CPU.
  A 70 KB answer made by a one-line WSGI app, 50 clients: 0.09 ms of server CPU per request
  under uWSGI (4 processes x 4 threads), 0.52 ms under gunicorn's gthread workers, 0.13
  under granian. Most public pages are kept pages, so that overhead was about a third of
  what the site cost.
- **Three processes per core, three threads each**: threads of one process share its GIL,
  and a page that has to be made (a paper page, a day seen for the first time) waits for
  every request of its process; the operating system shares the cores between processes
  more evenly. With 4 x 4, made pages waited behind kept ones (day p95 114-119 ms against
  gunicorn's 105); 6 x 3 gave 74 against gunicorn's 94 in the same minutes. Two threads
  let the signup previews take a process's every thread (page p95 217 ms, target 200);
  a page finds the third while a preview holds its process's preview slot
  (``subscriptions.previews``).
- **A thread takes a connection only when it is free** (uWSGI's threads each ``accept``,
  under ``thunder-lock``): the rest wait in the listen queue, first come first served,
  where any process can take them. No keep-alive: behind the proxy of the production
  set-up (``BEHIND_HTTPS_PROXY``) each request is a new loopback connection.
- **The app and the sentence model are loaded once, in the master, before it forks**
  (``digestsite.web_app``), and what it loaded is frozen out of the garbage collector's
  sight: the workers share those pages, and their full collections walk only what they
  made themselves.
- **One compute thread for the sentence model and BLAS** in each process, and a pool of
  database connections per process (``DATABASE_POOL_SIZE``, 8 unless set; ``CONN_MAX_AGE``
  0): see the README's settings.
- ``harakiri``: a request still running after 30 s is ended with its worker (the master
  starts another), as gunicorn's ``timeout`` did. ``SIGTERM`` stops it within a second
  when idle, at most 25 s for a worker still answering.

Threads share a process: code that web requests run must be thread-safe (the ranking's
stemmer is one per thread).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from digestsite.env import env_int, env_str

ENVIRONMENT_DEFAULTS = {
    "CONN_MAX_AGE": "0",
    "DATABASE_POOL_SIZE": "8",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def processes() -> int:
    return env_int("WEB_CONCURRENCY", 3 * (os.cpu_count() or 1), minimum=1)


def threads() -> int:
    return env_int("WEB_THREADS", 3, minimum=1)


def uwsgi_args(extra=()) -> list[str]:
    """uWSGI's command line for the environment's settings, ``extra`` options last (they win)."""
    address = f"{env_str('HOST', '127.0.0.1')}:{env_int('PORT', 8000, minimum=1, maximum=65535)}"
    return [
        "--strict",  # an unknown option is an error, not a warning
        "--master",
        "--http-socket",
        address,
        "--module",
        "digestsite.web_app:application",
        "--processes",
        str(processes()),
        "--threads",
        str(threads()),
        "--thunder-lock",
        "--listen",
        "1024",
        "--buffer-size",
        "32768",  # request headers up to 32 KB (uWSGI's default, 4 KB, refuses long preview URLs)
        "--harakiri",
        "30",
        "--need-app",
        "--single-interpreter",
        "--die-on-term",  # honcho's and systemd's SIGTERM stops it (uWSGI's own default reloads)
        "--skip-atexit",  # a worker's exit hooks (the connection pools') held each stop for its full mercy
        "--worker-reload-mercy",
        "25",  # then a worker still busy is killed
        "--no-orphans",  # a master killed (the OOM killer) takes its workers along: a restart can bind again
        *_request_log(),
        *extra,
    ]


ACCESS_LOG_FORMAT = "%(addr) %(method) %(uri) %(status) %(size) %(micros)"


def _request_log() -> list[str]:
    """No access log unless ``WEB_ACCESS_LOG`` names a file (address, method, URL, status,
    bytes, microseconds inside the server); errors go to stderr either way."""
    path = env_str("WEB_ACCESS_LOG", "")
    if not path:
        return ["--disable-logging"]
    return ["--req-logger", f"file:{path}", "--log-format", ACCESS_LOG_FORMAT]


def main(argv=None) -> None:
    for name, value in ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    args = uwsgi_args(sys.argv[1:] if argv is None else argv)
    uwsgi = Path(sys.executable).with_name("uwsgi")
    os.execv(uwsgi, [str(uwsgi), *args])  # noqa: S606 (our own venv's uwsgi, no shell)


if __name__ == "__main__":
    main()
