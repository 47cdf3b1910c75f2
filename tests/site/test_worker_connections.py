"""A worker keeps its database connection from one task to the next, as CONN_MAX_AGE says.

Celery's Django fixup closes every connection around each task unless
``CELERY_DB_REUSE_MAX`` is set; a digest batch then paid for a new PostgreSQL backend.
"""

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from digestsite import celery as celery_module

pytestmark = pytest.mark.django_db(transaction=True)


class _Task:
    """What the task_prerun/task_postrun signals carry, for a task run by a worker."""

    class request:  # noqa: N801 (Celery's attribute name)
        is_eager = False


def _run_a_task_as_a_worker(fixup) -> object:
    """Celery's fixup and our signal handlers around one task; returns its DB connection."""
    fixup.on_task_prerun(sender=_Task())
    celery_module._close_old_connections(task=_Task())
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    used = connection.connection
    fixup.on_task_postrun(sender=_Task())
    celery_module._close_old_connections(task=_Task())
    return used


def test_a_worker_reuses_its_connection_between_tasks(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    fixup = DjangoWorkerFixup(celery_module.app)
    assert fixup.db_reuse_max  # from settings.CELERY_DB_REUSE_MAX
    first, second, third = (_run_a_task_as_a_worker(fixup) for _ in range(3))
    assert first is second is third
    assert connection.connection is third


def test_without_reuse_max_celery_opens_one_per_task(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    fixup = DjangoWorkerFixup(celery_module.app)
    fixup.db_reuse_max = None  # Celery's default
    assert _run_a_task_as_a_worker(fixup) is not _run_a_task_as_a_worker(fixup)


def test_a_connection_past_conn_max_age_or_broken_is_replaced(monkeypatch):
    fixup = DjangoWorkerFixup(celery_module.app)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)  # as in the web process (digestsite.web)
    connection.close()
    assert _run_a_task_as_a_worker(fixup) is not _run_a_task_as_a_worker(fixup)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    kept = _run_a_task_as_a_worker(fixup)
    connection.errors_occurred = True  # a query failed in that task: Django checks the connection
    monkeypatch.setattr(connection, "is_usable", lambda: False)
    assert _run_a_task_as_a_worker(fixup) is not kept
