"""Exactly once, by data: the conditional UPDATEs that take, finish and settle a
delivery row.

A worker claims a row (``QUEUED`` → ``SENDING``, or a ``SENDING`` claim whose lease has
run out and that was never handed over) before its message is finished, and records
the outcome with an UPDATE that only matches its own claim. A redelivered or duplicated
task finds the row taken or done and does nothing.

A claim left behind by a killed worker is taken again once its lease has expired. The
lease is at least the Celery hard time limit, and a claim spans one message, so a live
worker's claim never expires under it: the task would have been killed first. A claim
*handed over* (the whole message was at the SMTP server, only its final dot to go) is
never taken again: once its lease runs out it counts as sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from digests.models import Delivery

logger = logging.getLogger(__name__)

Status = Delivery.Status


def sending_lease() -> dt.timedelta:
    """How long a SENDING claim is trusted: never shorter than the task's hard time limit."""
    return dt.timedelta(seconds=settings.DIGEST_SENDING_LEASE_SECONDS)


def claimable(now: dt.datetime) -> Q:
    """Rows a worker may take: queued, or claimed by a worker that died before handing the
    message over (its lease ran out). A handed-over claim is never taken again."""
    return Q(status=Status.QUEUED) | Q(status=Status.SENDING, handed_over=False, claimed_at__lt=now - sending_lease())


_CLAIM_SQL = """
UPDATE digests_delivery
SET status = 'sending', claimed_at = %s, attempts = attempts + 1, handed_over = %s, updated_at = %s,
    message_id = %s, paper_ids = %s, items = %s
WHERE id = %s AND (status = 'queued' OR (status = 'sending' AND handed_over = %s AND claimed_at < %s))
"""


def claim(row: Delivery, carried: dict, *, handed_over: bool) -> dt.datetime | None:
    """Take the row for this attempt; the claim's time, or None when another worker has it.

    The row also gets what this copy shows (``carried``: Message-ID, papers, whys): kept
    if it turns out sent, replaced by a retry. ``_CLAIM_SQL`` is the UPDATE that
    ``Delivery.objects.filter(claimable(now), id=row.id).update(...)`` makes, written out
    because it runs once per message (bench/README.md, "claims").
    """
    claimed_at = timezone.now()
    at = db_connection.ops.adapt_datetimefield_value(claimed_at)
    lease_end = db_connection.ops.adapt_datetimefield_value(claimed_at - sending_lease())
    as_json = Delivery._meta.get_field("items").get_db_prep_value
    paper_ids, items = as_json(carried["paper_ids"], db_connection), as_json(carried["items"], db_connection)
    with _claim_cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL, [at, handed_over, at, carried["message_id"], paper_ids, items, row.id, False, lease_end]
        )
        claimed = cursor.rowcount == 1
    return claimed_at if claimed else None


def _claim_cursor():
    """On PostgreSQL, a cursor that sends the claim's values apart from its SQL (server-side
    binding) instead of quoting the copy's items into the SQL text. No named prepared
    statement is made (Django keeps psycopg's ``prepare_threshold`` off, for connection
    poolers). Wrapped as Django wraps its own, so query logging and counting see it."""
    if db_connection.vendor != "postgresql":
        return db_connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor  # only importable with psycopg

    db_connection.ensure_connection()
    with db_connection.wrap_database_errors:
        cursor = ServerBindingCursor(db_connection.connection)
    if db_connection.queries_logged:
        return db_connection.make_debug_cursor(cursor)
    return db_connection.make_cursor(cursor)


def finish(delivery: Delivery, claimed_at: dt.datetime, **fields) -> bool:
    """Record the outcome of our own claim (and only ours)."""
    updated = Delivery.objects.filter(id=delivery.id, status=Status.SENDING, claimed_at=claimed_at).update(
        updated_at=timezone.now(), **fields
    )
    if not updated:
        logger.error("claim lost before its outcome was recorded", extra={"delivery": delivery.id})
    return bool(updated)


def settle(row: Delivery, claimed_at: dt.datetime | None, **fields) -> bool:
    """Record an attempt's outcome on our own claim, or on the row if nobody holds it."""
    if claimed_at is not None:
        return finish(row, claimed_at, handed_over=False, **fields)
    now = timezone.now()
    return bool(
        Delivery.objects.filter(claimable(now), id=row.id).update(attempts=F("attempts") + 1, updated_at=now, **fields)
    )


def close_unclaimed(delivery: Delivery, status: str, reason: str, now: dt.datetime) -> bool:
    """Skip/suppress/fail a row we have not claimed, if nobody else holds it."""
    return bool(
        Delivery.objects.filter(claimable(now), id=delivery.id).update(
            status=status, last_error=reason[:1000], updated_at=timezone.now()
        )
    )


def record_sent(accepted: list[int]) -> None:
    """Mark rows the SMTP server accepted as SENT, in one UPDATE, and empty the list.

    Only handed-over claims match; a handed-over claim is never taken by another worker,
    only counted as sent once its lease runs out (``presume_sent``), so the row is ours.
    ``sent_at`` is the claim's time: the final dot was written right after it.
    """
    if not accepted:
        return
    Delivery.objects.filter(id__in=list(accepted), status=Status.SENDING, handed_over=True).update(
        status=Status.SENT, sent_at=F("claimed_at"), handed_over=False, last_error="", updated_at=timezone.now()
    )
    accepted.clear()


def presume_sent(row: Delivery, now: dt.datetime) -> bool:
    """A handed-over claim whose lease ran out: its worker died after the server had the
    whole message (only the final dot, or only the answer, was missing). Count it as sent."""
    done = Delivery.objects.filter(id=row.id, status=Status.SENDING, handed_over=True, claimed_at=row.claimed_at)
    counted = done.update(
        status=Status.SENT,
        sent_at=row.claimed_at,
        handed_over=False,
        last_error="counted as sent: the worker stopped after handing the whole message to the SMTP server",
        updated_at=now,
    )
    if counted:
        logger.warning("handed-over delivery counted as sent", extra={"delivery": row.id})
    return bool(counted)


def record_sent_after_lost_commit(delivered: list[tuple[Delivery, dict]], *, wait: float) -> bool:
    """The final dots went out but the COMMIT of their claims was lost with the database
    connection (PostgreSQL restarted): the servers took these messages while their rows
    may still say QUEUED. Mark them SENT, with what each copy showed, as soon as the
    database is back (trying for ``wait`` seconds), so that the batch's retry does not send
    them again."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db_connection.close()  # the old connection is dead; the next query opens a new one
            now = timezone.now()
            with transaction.atomic():
                for row, carried in delivered:
                    Delivery.objects.filter(id=row.id).exclude(status=Status.SENT).update(
                        status=Status.SENT,
                        sent_at=now,
                        claimed_at=now,
                        handed_over=False,
                        last_error="",
                        message_id=carried["message_id"],
                        paper_ids=carried["paper_ids"],
                        items=carried["items"],
                        updated_at=now,
                    )
            logger.warning("recorded messages sent before the database went away", extra={"deliveries": len(delivered)})
            return True
        except (OperationalError, InterfaceError):
            if time.monotonic() >= deadline:
                ids = [row.id for row, _carried in delivered]
                logger.error("could not record messages the SMTP server took", extra={"deliveries": ids})
                return False
            time.sleep(0.5)


def note_deferral(ids: list[int], reason: str) -> None:
    """Say on queued rows why they wait (the server was down before any of them was tried):
    the dashboard shows it. Not an attempt: nothing was sent or refused."""
    Delivery.objects.filter(id__in=list(ids), status=Status.QUEUED).update(last_error=reason[:1000])
