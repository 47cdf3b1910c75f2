"""One message, from its rendering to the server's answer, and the claim between them.

Over SMTP the claim sits inside the SMTP transaction (``emails.smtp``): MAIL, RCPT, DATA
and the whole message go first (``stage``); then one database transaction claims the
staged rows (marked ``handed_over``), writes their final dots and commits
(``hand_over``). A server discards a message whose dot never came and the database
drops a transaction whose client died, so a worker killed before the dot leaves
nothing behind (the row is sent later), and one killed after the commit leaves a
message the server has: that claim is counted as sent when its lease runs out, never
sent again. What is left is the gap between two socket writes (the dot, then COMMIT),
and a server that queues the message and then drops the connection before its 250
reaches us, or stays silent for ``EMAIL_DATA_END_TIMEOUT`` (RFC 1047): no client can
tell that from a lost message, so it is sent again, once, with the same Message-ID.
The answer is waited for that long, not ``EMAIL_TIMEOUT`` (a slow server would get a
second copy), and a message the server answered 250 is never sent again.

With other backends (an ESP's API, the outbox) the window is the classic one: the
provider has accepted the message and the worker dies before the ``SENT`` commit; that
row is taken again after its lease and sent again with the stored Message-ID, so
receivers that de-duplicate by Message-ID (Gmail among them) show one copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import time
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

import emails
from digests import claims
from digests.content import DigestItem, list_id
from digests.models import Delivery
from digests.retries import record_failure
from emails import smtp

logger = logging.getLogger(__name__)

Status = Delivery.Status


def send_one(
    row: Delivery, rendered, items: list[DigestItem], connection, *, unsubscribe: str, staged: list[Staged]
) -> str | None:
    """Send one row. Over SMTP the message goes to the server without its final dot and
    the row joins ``staged``, for ``hand_over`` to claim and finish (returns None);
    otherwise claim, send and record it here. Returns the BatchResult field to count it in."""
    message_id = row.message_id or emails.new_message_id()  # a resend carries the same Message-ID
    message = emails.build_message(
        rendered,
        to=row.subscriber.email,
        unsubscribe_url=unsubscribe,
        list_id=list_id(row.issue.frequency),
        message_id=message_id,
        connection=connection,
    )
    carried = {
        "message_id": message_id,
        "paper_ids": [item.paper.id for item in items],
        "items": [{"paper": item.paper.id, "topic": item.topic, "why": item.why} for item in items],
    }
    try:
        session = smtp.session_of(connection, reopen=True)
    except Exception as exc:  # the server is down: nothing claimed, nothing sent
        return record_failure(row, exc, claimed_at=None)
    if session is not None:
        return _stage(row, message, session, connection, carried, staged)

    # Any other backend (an ESP's API, the outbox, the console): claim, send, record.
    claimed_at = claims.claim(row, carried, handed_over=False)
    if claimed_at is None:
        return "busy"  # another worker holds or finished it
    try:
        message.send()
    except SoftTimeLimitExceeded:
        raise  # out of time mid-send: the claim stays SENDING and is retaken after its lease
    except Exception as exc:
        return record_failure(row, exc, claimed_at=claimed_at)
    # The provider has the message; a worker killed before this UPDATE commits leaves a
    # claim that is retaken after its lease and sent again (same Message-ID).
    claims.finish(row, claimed_at, status=Status.SENT, sent_at=timezone.now(), last_error="")
    return "sent"


@dataclass(slots=True)
class Staged:
    """A message at its SMTP server but for the final dot, and the row it is for."""

    row: Delivery
    connection: object
    session: smtplib.SMTP
    carried: dict


def _stage(row: Delivery, message, session, connection, carried: dict, staged: list[Staged]) -> str | None:
    """SMTP: MAIL, RCPT, DATA and the whole message but its final dot."""
    try:
        smtp.begin(session, *smtp.envelope(message), message.wire_bytes())
    except SoftTimeLimitExceeded:
        raise  # nothing claimed, nothing delivered: the row is still QUEUED
    except Exception as exc:  # refused at MAIL/RCPT/DATA, or the connection broke: nothing delivered
        return record_failure(row, exc, claimed_at=None)
    staged.append(Staged(row, connection, session, carried))
    return None


def hand_over(
    staged: list[Staged], accepted: list[int], *, answer_by: float | None = None
) -> list[tuple[Delivery, str, object]]:
    """Claim the staged rows and write their final dots in one transaction, committed right
    after the last dot; then read the servers' answers (waiting until ``answer_by``, a
    ``time.monotonic()`` value, at the latest). Sent rows go to ``accepted`` (for
    ``claims.record_sent``). Returns (row, BatchResult field, its connection) for each, and
    empties ``staged``."""
    group = list(staged)
    staged.clear()
    claimed: dict[int, dt.datetime] = {}
    outcomes: dict[int, str] = {}
    dots: list[int] = []  # rows whose final dot was written
    try:
        _claim_and_finish(group, claimed, outcomes, dots)
    except SoftTimeLimitExceeded:
        raise
    except (OperationalError, InterfaceError):
        if dots:  # the database went away after the dots: the servers may have the messages
            _keep_what_servers_took(group, claimed, _Answers(answer_by))
        else:  # before any dot: the servers drop the unfinished messages
            for item in group:
                smtp.abandon(item.connection)
        raise  # nothing committed: the task retries the batch
    except Exception as exc:  # a claim or the COMMIT failed: nothing committed
        results = []
        for item in group:
            smtp.abandon(item.connection)
            results.append((item.row, record_failure(item.row, exc, claimed_at=None), item.connection))
        return results
    results = []
    answers = _Answers(answer_by)
    for item in group:
        row_id = item.row.id
        if row_id in outcomes:
            results.append((item.row, outcomes[row_id], item.connection))
        elif row_id not in claimed:
            smtp.abandon(item.connection)  # another worker has the row: the server drops our unfinished copy
            results.append((item.row, "busy", item.connection))
        else:
            try:
                answers.read(item)
            except SoftTimeLimitExceeded:
                raise  # the server has the message: the handed-over claim is counted as sent after its lease
            except Exception as exc:  # refused after the dot, or no answer (RFC 1047): retried
                results.append((item.row, record_failure(item.row, exc, claimed_at=claimed[row_id]), item.connection))
                continue
            accepted.append(row_id)
            results.append((item.row, "sent", item.connection))
    return results


class _Answers:
    """Reads the answers to a group's final dots, all within one ``EMAIL_DATA_END_TIMEOUT``
    from the dots, not ``EMAIL_TIMEOUT`` (RFC 5321 4.5.3.2.6). The servers work on them
    side by side, so waiting for each in turn does not multiply the wait. ``answer_by``
    ends it sooner: inside the task's time limit, so that a silent server's messages are
    retried rather than cut short by the limit (then they would count as sent)."""

    def __init__(self, answer_by: float | None = None):
        self.deadline = time.monotonic() + settings.EMAIL_DATA_END_TIMEOUT
        if answer_by is not None:
            self.deadline = min(self.deadline, answer_by)

    def read(self, item: Staged) -> None:
        wait = max(self.deadline - time.monotonic(), 0.1)  # an answer already here is read at once
        try:
            smtp.read_answer(item.session, timeout=wait)
        except (smtplib.SMTPException, OSError) as exc:
            if smtp.unanswered(exc):  # the server may have it: said apart from refusals, for operators and drills
                logger.warning(
                    "no answer to a final dot: the server may have the message (RFC 1047); it is sent again "
                    "with the same Message-ID",
                    extra={"delivery": item.row.id, "error": repr(exc)},
                )
            raise


def _claim_and_finish(group: list[Staged], claimed: dict, outcomes: dict, dots: list[int]) -> None:
    """The one transaction of ``hand_over``: the claims, then the final dots, then COMMIT."""
    with transaction.atomic():
        for item in group:
            claimed_at = claims.claim(item.row, item.carried, handed_over=True)
            if claimed_at is not None:
                claimed[item.row.id] = claimed_at
        broken: list[tuple[Staged, BaseException]] = []
        for item in group:
            if item.row.id in claimed:
                dots.append(item.row.id)
                try:
                    smtp.send_final_dot(item.session)
                except (smtplib.SMTPException, OSError) as exc:
                    broken.append((item, exc))
        for item, exc in broken:  # no dot, no delivery: undo that claim before COMMIT
            smtp.abandon(item.connection)
            outcomes[item.row.id] = record_failure(item.row, exc, claimed_at=claimed.pop(item.row.id))
        # ---- THE ONLY WINDOW LEFT ------------------------------------------------
        # Between writing the dots and writing COMMIT: a few socket writes in a row,
        # nothing waited for. A worker killed before a dot leaves no claim (the
        # transaction dies with its connection) and no message (the server drops an
        # unfinished one): the row is sent later. One killed after COMMIT went out
        # leaves handed-over claims for messages the servers have: counted as sent
        # when their lease runs out, never sent twice. A database that goes away in
        # this window (the COMMIT fails) is met by ``_keep_what_servers_took``.


def _keep_what_servers_took(group: list[Staged], claimed: dict[int, dt.datetime], answers: _Answers) -> None:
    """After a lost COMMIT: read the answers to the dots that went out and record the
    messages the servers took as SENT once the database is back (``claims``)."""
    delivered = []
    for item in group:
        if item.row.id not in claimed:  # no dot went out for it
            smtp.abandon(item.connection)
            continue
        try:
            answers.read(item)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # refused after the dot, or silent: the retry sends it
            logger.warning(
                "no answer to a final dot after a lost commit", extra={"delivery": item.row.id, "error": repr(exc)}
            )
            continue
        delivered.append((item.row, item.carried))
    if delivered:
        wait = max(1.0, min(60.0, settings.CELERY_TASK_SOFT_TIME_LIMIT / 2 - 1))
        claims.record_sent_after_lost_commit(delivered, wait=wait)


def can_open(connection) -> bool:
    """Whether one more SMTP connection of a batch opens (it is opened now if it was not)."""
    try:
        smtp.session_of(connection, reopen=True)
    except Exception as exc:
        logger.warning("SMTP server refused one more connection; the batch uses fewer", extra={"error": repr(exc)})
        return False
    return True


def connection_broken(connection) -> bool:
    smtp = getattr(connection, "connection", None)
    if smtp is None:
        return False
    try:
        return smtp.noop()[0] != 250
    except Exception:
        connection.connection = None  # smtplib leaves a dead socket behind; open a new one next time
        return True
