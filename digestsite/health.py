"""``/healthz``: is the database reachable, is the broker reachable.

The public (a load balancer, a monitor) gets only ``ok`` or ``unhealthy``: the errors
name hosts, drivers and versions. Staff users signed in to the admin see the details,
and an unhealthy answer logs them.
"""

import logging
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from digestsite.celery import app

logger = logging.getLogger(__name__)


def check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means unhealthy
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_broker() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "eager (tasks run in-process)"}
    started = time.monotonic()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "mode": "redis", "ms": round((time.monotonic() - started) * 1000, 1)}


@never_cache
@require_GET
def healthz(request):
    checks = {"database": check_database(), "broker": check_broker()}
    healthy = all(check["ok"] for check in checks.values())
    if not healthy:
        logger.warning("unhealthy", extra={"checks": checks})
    answer = {"status": "ok" if healthy else "unhealthy"}
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        answer.update(checks)
    return JsonResponse(answer, status=200 if healthy else 503)
