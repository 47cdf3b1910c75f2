"""When a failed send is tried again, and what a refusal does to the row."""

from __future__ import annotations

import datetime as dt
import logging
import random
import smtplib

from django.conf import settings
from django.db import InterfaceError, OperationalError

from digests import breaker, claims
from digests.models import Delivery
from emails.replies import refusal_of
from subscriptions import suppression

logger = logging.getLogger(__name__)

Status = Delivery.Status

# Transient failures are retried up to this many attempts in all (backoff doubles from
# DIGEST_RETRY_BASE_SECONDS up to DIGEST_MAX_RETRY_DELAY_SECONDS: about half an hour in
# all with the defaults). With one deferral in five, eight in a row happen to about one
# row in 390,000.
MAX_ATTEMPTS = 8


def rescue_after() -> dt.timedelta:
    """A QUEUED row untouched this long has probably lost its task (broker restarted)."""
    return dt.timedelta(seconds=settings.DIGEST_RESCUE_AFTER_SECONDS)


def max_retry_delay() -> float:
    """Backoff cap: never an ETA the broker would redeliver (visibility timeout) before it runs."""
    return min(settings.DIGEST_MAX_RETRY_DELAY_SECONDS, settings.CELERY_VISIBILITY_TIMEOUT / 2)


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter ("equal jitter"), bounded by ``max_retry_delay``."""
    base = settings.DIGEST_RETRY_BASE_SECONDS
    ceiling = min(base * 2 ** max(attempt - 1, 0), max_retry_delay())
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def record_failure(row: Delivery, exc: BaseException, *, claimed_at: dt.datetime | None) -> str:
    """Record a failed attempt (our claim's, or an unclaimed row's) and say how to count it
    (a ``BatchResult`` field: "retry", "failed", "suppressed", "paused" or "busy").

    Transient failures (4xx, connection trouble) go back to QUEUED until ``MAX_ATTEMPTS``;
    permanent ones fail. Only a recipient-specific answer to ``RCPT TO`` suppresses the
    address (``emails.replies``), and not once the issue's circuit breaker, which every
    permanent failure counts towards, has paused it ("paused": the row stays FAILED
    and the operator's resume sends it again).
    """
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database went away (restarted, connection ended), not the message: nothing of
        # this group was committed, and the task retries the batch (digests.tasks).
        raise exc
    refusal = refusal_of(exc)
    error = refusal.describe()
    attempt = row.attempts + 1
    if not isinstance(exc, (smtplib.SMTPException, OSError)):
        logger.exception("digest send failed unexpectedly", extra={"delivery": row.id})
        return "failed" if claims.settle(row, claimed_at, status=Status.FAILED, last_error=error) else "busy"
    if refusal.transient:
        final = attempt >= MAX_ATTEMPTS
        status = Status.FAILED if final else Status.QUEUED
        if not claims.settle(row, claimed_at, status=status, last_error=error):
            return "busy"
        logger.warning("digest send deferred", extra={"delivery": row.id, "attempt": attempt, "error": error})
        return "failed" if final else "retry"
    if not claims.settle(row, claimed_at, status=Status.FAILED, last_error=error):
        return "busy"
    logger.warning("digest send refused", extra={"delivery": row.id, "step": refusal.step, "error": error})
    if breaker.note_permanent_failure(row.issue_id, refusal):
        return "paused"  # the same refusal for everyone says more about us than about them: suppress nobody
    if refusal.recipient_gone:
        suppression.suppress_address(row.subscriber.email, reason=f"hard bounce: {error}"[:200])
        return "suppressed"
    return "failed"
