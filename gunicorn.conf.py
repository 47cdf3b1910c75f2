"""gunicorn's settings for the web process. gunicorn reads ``./gunicorn.conf.py`` by
itself when started from the repository's folder; flags on its command line win.

    gunicorn digestsite.wsgi -b 0.0.0.0:8000

- **gthread workers, two processes per core** (``WEB_CONCURRENCY``): a sync worker
  serves one request at a time, so a page waits behind every preview queued before it
  in that process; a thread does not. Each process uses the sentence model (about 35 MB
  of its own per added worker, the weights shared: README, "Production"); two per core
  rather than one because threads of one process share its GIL, and the operating system
  shares the cores between processes more evenly than the GIL shares a process between
  threads (``bench/signup_load.py`` on 2 cores: page p95
  46-93 ms with 4 processes, 98-142 ms with 2, at load average 0.4-9).
- **Four threads a process** (``GUNICORN_THREADS``), and no more connections than threads:
  a process takes a connection only when a thread is free for it; the rest wait in the
  listen queue, first come first served, where any process can take them. The threads of
  the 4 processes share the 2 cores: the more requests are inside the server at once, the
  longer a page that has to be made (a paper page, a day seen for the first time: 2-6 ms
  of CPU) takes to finish among them, while a kept page (under a millisecond) finishes
  quickly whatever the number. With 32 threads and 40 connections a process a paper page
  spent 40-50 ms inside gunicorn; with 6 threads about 20; with 4, made pages are about a
  tenth quicker again (``bench/site_load.py``: p95 day 78-92 and paper 72-82 ms against
  89-100 and 85-91 with 6, alternated in the same minutes), and ``bench/signup_load.py``
  still meets its page target (p95 179 ms against 147 with 6; previews 353 against 419),
  since a page finds a thread while the others wait for the process's preview slot
  (``subscriptions.previews``). Three threads let previews take nearly every thread of a
  process (signup page p95 194-241 ms).
- **No keep-alive** (``keepalive = 0``): an idle kept-alive connection would hold one of
  the four places for seconds. Behind a proxy (the production set-up, ``BEHIND_HTTPS_PROXY``)
  the proxy keeps the browsers' connections; a request to gunicorn is a new loopback
  connection, as in the benchmarks.
- **One compute thread for the sentence model and BLAS**: a web process encodes at most
  one topic at a time (``ranking.semantic``); intra-op threads on top of the request
  threads would only fight the pages for the cores.
- **A pool of database connections per process** (``DATABASE_POOL_SIZE``, 8 unless set;
  ``CONN_MAX_AGE=0``): Django would keep one connection per thread (with 32 threads, 4
  processes held 128 while idle, more than PostgreSQL's default ``max_connections`` of
  100: "too many clients already", 269 failed previews in the load test), and a new
  connection for every request costs a backend fork and authentication, more than a
  public page's queries (``bench/site_load.py``). The pool keeps at most 8 open per
  process (32 in all), more than its threads, so a request never waits for one. (On
  SQLite it does nothing.)
- **The app and the sentence model are loaded once, in the master, before it forks the
  workers** (``preload_app``, ``when_ready``): the workers start with them loaded and
  share those pages instead of each loading its own copy (the model's weight matrices
  are mapped from one file under ``VAR_DIR`` in any case; see the README's production
  section for the memory per added worker). A code change needs a restart (not ``HUP``)
  to reach the workers.
- **What the master loaded is frozen out of the garbage collector's sight** (``gc.freeze``
  before the first fork, as Python's documentation advises for servers that fork): a full
  collection in a worker walked the 150,000 objects of Django, the app and the model,
  stopping the worker's threads for 70-260 ms; with them frozen it walks the 28,000 made
  since, 45-60 ms (``bench/site_load.py``: a worker's collections took 420-550 ms of a run
  against 460-680, measured with ``gc.callbacks``), and the frozen objects' pages stay shared
  with the master instead of being copied as the collector touches them.

Threads share a process: code that web requests run must be thread-safe (the ranking's
stemmer is one per thread). The signup preview still ranks one at a time per process:
ranking is CPU work under the GIL, so more at once would only slow the pages down.
"""

import gc
import os

os.environ.setdefault("CONN_MAX_AGE", "0")
os.environ.setdefault("DATABASE_POOL_SIZE", "8")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
preload_app = True
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
worker_connections = threads  # a connection is taken only when a thread is free for it
backlog = 2048
timeout = 30
graceful_timeout = 30
keepalive = 0


def when_ready(server):
    """In the master, after the app is loaded and before the first fork: load the sentence
    model, so that every worker starts with it (one compute thread, see above), then freeze
    what is loaded out of the garbage collector's sight (see below)."""
    from ranking import semantic

    semantic.load_before_fork(1)
    gc.collect()
    gc.freeze()


def post_worker_init(worker):
    """Make sure the model is loaded before the worker takes requests (seconds): otherwise
    the first previews after a start or restart wait for it, or find no preview slot
    free. A no-op when the worker inherited it from the master."""
    from ranking import semantic

    if semantic.is_available():
        semantic.get_model()
