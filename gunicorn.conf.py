"""gunicorn's settings for the web process. gunicorn reads ``./gunicorn.conf.py`` by
itself when started from the repository's folder; flags on its command line win.

    gunicorn digestsite.wsgi -b 0.0.0.0:8000

- **gthread workers, one process per core** (``WEB_CONCURRENCY``): each process holds
  the sentence model (about 450 MB), so processes are for the cores and threads for
  concurrency. A sync worker serves one request at a time, so a page waits behind
  every preview queued before it in that process; a thread does not.
- **Threads** (``GUNICORN_THREADS``, 32 by default): requests mostly wait (database,
  Redis, or a preview for its process's one preview slot, see
  ``subscriptions.services.preview_papers``), and a page must find a free thread while
  previews wait for the slot. A process accepts only a few more connections than it
  has threads (room for idle kept-alive ones); the rest wait in the listen queue, where
  the other process can take them, instead of queueing behind busy threads.
- **One compute thread for PyTorch and BLAS**: a web process encodes at most one topic
  at a time (``digests.ranking.semantic``); intra-op threads on top of the request
  threads would only fight the pages for the cores.
- The model is loaded when a worker starts, before it takes requests.

Threads share a process: code that web requests run must be thread-safe. Ranking is
not (``digests.ranking.lexical`` shares one stemmer), which is one reason the signup
preview ranks one at a time per process; nothing else should rank on web threads
(the operator's "preview digest" in the admin does, rarely) until that is fixed.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 32)
worker_connections = threads + 8  # room for a few idle kept-alive connections
backlog = 2048
timeout = 30
graceful_timeout = 30
keepalive = 5


def post_worker_init(worker):
    """Load the sentence model before the worker takes requests (seconds): otherwise the
    first previews after a start or restart wait for it, or find no preview slot free."""
    from digests.ranking import semantic

    if semantic.is_available():
        semantic.get_model()
