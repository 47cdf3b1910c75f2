"""The Celery app; configuration comes from Django settings (``CELERY_*``)."""

import logging
import os
import time

from celery import Celery
from celery.signals import task_failure, task_postrun, task_prerun, task_retry, worker_init, worker_process_init
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digestsite.settings")

app = Celery("digestsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("digestsite.tasks")
_started: dict[str, float] = {}


@worker_init.connect
def _load_model_before_fork(**_):
    """In the worker's main process, before it forks the pool: the sentence model's graph
    is built here if missing, and with one compute thread per pool process the model is
    loaded here, so the pool processes start with it (sharing its memory) instead of each
    loading it (``ranking.semantic.load_before_fork``)."""
    from django.conf import settings

    from ranking import semantic

    semantic.load_before_fork(settings.WORKER_COMPUTE_THREADS)


@worker_process_init.connect
def _prepare_pool_process(**_):
    """Load the sentence model, and limit the process's compute threads.

    numpy's BLAS and the model start a thread per core in every process; with a pool
    process per core they spin against each other (bench/README.md has the measurement).
    The environment covers libraries loaded later; ``threadpool_limits`` the ones loaded
    already. Every digest batch ranks with the model: load it (seconds) now, not inside the
    first batch's time limit; a pool process that inherited it loaded keeps it.
    """
    from django.conf import settings
    from threadpoolctl import threadpool_limits

    from ranking import semantic

    threads = settings.WORKER_COMPUTE_THREADS
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    if semantic.is_available():
        semantic.get_model()
        semantic.use_threads(threads)
    threadpool_limits(limits=threads)


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **_):
    """Between tasks, what Django does between requests: drop a database connection that
    is past CONN_MAX_AGE or has had an error (CELERY_DB_REUSE_MAX keeps the rest)."""
    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()


@task_prerun.connect
def _log_task_start(task_id=None, task=None, args=None, kwargs=None, **_):
    _started[task_id] = time.monotonic()
    logger.info(
        "task started",
        extra={"task": task.name, "task_id": task_id, "task_args": _summarise(args), "task_kwargs": kwargs or {}},
    )


@task_postrun.connect
def _log_task_end(task_id=None, task=None, state=None, retval=None, **_):
    started = _started.pop(task_id, None)
    duration = round(time.monotonic() - started, 4) if started is not None else None
    logger.info(
        "task finished",
        extra={
            "task": task.name,
            "task_id": task_id,
            "state": state,
            "duration_s": duration,
            "result": retval if isinstance(retval, (int, str, dict, type(None))) else repr(retval)[:200],
        },
    )


@task_retry.connect
def _log_task_retry(request=None, reason=None, **_):
    logger.warning("task retry", extra={"task": request.task, "task_id": request.id, "reason": str(reason)[:500]})


@task_failure.connect
def _log_task_failure(task_id=None, sender=None, exception=None, **_):
    logger.error("task failed", extra={"task": sender.name, "task_id": task_id, "error": repr(exception)[:500]})


def _summarise(args):
    """Long id lists would flood the log; keep the count and the first few."""
    out = []
    for arg in args or ():
        if isinstance(arg, (list, tuple)) and len(arg) > 5:
            out.append({"count": len(arg), "first": list(arg[:5])})
        else:
            out.append(arg)
    return out
