"""Sending a batch of delivery rows: sort them, rank their papers, render, send, record.

Each row is claimed right before its message is finished (``digests.sending``,
``digests.claims``), so a redelivered or duplicated task is a no-op for whatever was
already sent. Over SMTP the batch uses up to ``DIGEST_SMTP_CONNECTIONS`` connections
side by side: a group of that many messages waits at the servers for their final dots
and is claimed in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from time import monotonic

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import get_connection
from django.utils import timezone

import emails
from digests import breaker, claims, content, ratelimit, sending
from digests.models import Delivery
from digests.retries import max_retry_delay, retry_delay
from emails import smtp
from emails.replies import refusal_of
from subscriptions.models import Subscriber
from subscriptions.selectors import followed_topics

logger = logging.getLogger(__name__)

Status = Delivery.Status

# A batch takes send slots from the shared rate limiter this many at a time. Slots a
# batch ends without using are lost (the rate is never exceeded, only briefly underused).
SEND_SLOTS_PER_CALL = 10
# The answers to a group's final dots are waited for until this share of the task's soft
# time limit at the latest (``sending.hand_over``); what has not answered by then is
# retried. Claiming stops at half of it, so a group's answers have at least 0.4 of it.
ANSWERS_BY_SHARE = 0.9
# Over SMTP, rows whose message the server accepted are marked SENT this many at a time
# (one UPDATE). Until then each is a handed-over claim, which is never sent again: had the
# worker died first, it would be counted as sent when its lease ran out.
RECORD_SENT_EVERY = 25


@dataclass
class BatchResult:
    sent: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    already_done: list[int] = field(default_factory=list)
    presumed_sent: list[int] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)  # left QUEUED: their issue is paused (digests.breaker)
    retry_in: float = 0.0

    @property
    def retry_ids(self) -> list[int]:
        """Rows to try again later: transient failures and claims held by another worker."""
        return sorted(set(self.retry) | set(self.busy))

    def as_dict(self) -> dict:
        return {k: len(v) if isinstance(v, list) else v for k, v in asdict(self).items()}


def deliver_batch(delivery_ids, *, connection=None, limiter=None) -> BatchResult:
    """Render and send a batch of deliveries; record each outcome.

    Queries: one for the rows (with subscriber and issue), one for the subscribers'
    topics, the ranking's own (per issue in the batch, not per subscriber), then per
    row the claim, and the outcome: over SMTP one UPDATE per ``RECORD_SENT_EVERY`` sent
    rows, with other backends one per row.
    """
    batch = _Batch(delivery_ids, connection=connection, limiter=limiter)
    batch.sort_rows()
    batch.rank()
    try:
        batch.send_all()
    finally:
        batch.close()
    batch.plan_retry()
    logger.info("digest batch delivered", extra={f"batch_{k}": v for k, v in batch.result.as_dict().items()})
    return batch.result


class _Batch:
    """One run of ``deliver_batch``: its rows, its connections and what became of each row."""

    def __init__(self, delivery_ids, *, connection, limiter):
        self.now = timezone.now()
        self.answer_by = monotonic() + settings.CELERY_TASK_SOFT_TIME_LIMIT * ANSWERS_BY_SHARE
        self.result = BatchResult()
        rows = Delivery.objects.filter(id__in=list(delivery_ids)).select_related("issue", "subscriber").order_by("id")
        self.rows = list(rows)
        self.followed = followed_topics({row.subscriber_id for row in self.rows})
        self.pending: list[Delivery] = []
        self.busy_until: list[dt.datetime] = []
        self.ranked: dict[int, list] = {}
        self.limiter = limiter or ratelimit.get_limiter()
        self.own_connection = connection is None
        self.connection = connection or get_connection()
        self.opened = self.opened_here = False
        self.slots = 0  # send slots taken from the rate limiter and not used yet
        self.accepted: list[int] = []  # handed over and accepted by the SMTP server, not yet recorded SENT
        self.lanes = [self.connection]  # SMTP: one connection per message of a group
        self.group_size = settings.DIGEST_SMTP_CONNECTIONS  # fewer if the server refuses more connections
        self.staged: list[sending.Staged] = []

    # -- before sending -------------------------------------------------------------

    def sort_rows(self) -> None:
        """Rows to send go to ``pending``; the rest are settled or counted as they are."""
        lease_end = self.now - claims.sending_lease()
        for row in self.rows:
            expired = row.status == Status.SENDING and row.claimed_at < lease_end
            if row.status == Status.QUEUED or (expired and not row.handed_over):
                self._sort_candidate(row)
            elif expired:  # handed over, then its worker died: the server has the message
                done = claims.presume_sent(row, self.now)
                (self.result.presumed_sent if done else self.result.already_done).append(row.id)
            elif row.status == Status.SENDING:
                self.result.busy.append(row.id)
                self.busy_until.append(row.claimed_at + claims.sending_lease())
            else:
                self.result.already_done.append(row.id)

    def _sort_candidate(self, row: Delivery) -> None:
        subscriber = row.subscriber
        if row.issue.paused_at is not None:
            self.result.paused.append(row.id)  # stays QUEUED until an operator resumes the issue
        elif subscriber.status == Subscriber.Status.BOUNCED:
            reason = f"address suppressed: {subscriber.suppression_reason}"
            if claims.close_unclaimed(row, Status.SUPPRESSED, reason, self.now):
                self.result.suppressed.append(row.id)
        elif subscriber.status != Subscriber.Status.ACTIVE:
            if claims.close_unclaimed(row, Status.SKIPPED, f"subscriber is {subscriber.status}", self.now):
                self.result.skipped.append(row.id)
        else:
            self.pending.append(row)

    def rank(self) -> None:
        """Every sendable row's papers, ranked once per issue in the batch."""
        by_issue: dict[int, list[Delivery]] = defaultdict(list)
        for row in self.pending:
            by_issue[row.issue_id].append(row)
        for group in by_issue.values():
            issue = group[0].issue
            subscribers = [row.subscriber for row in group]
            self.ranked.update(content.rank(subscribers, frequency=issue.frequency, period=issue.period, now=self.now))

    # -- sending ------------------------------------------------------------------------

    def send_all(self) -> None:
        # Stop claiming well inside the task's soft time limit: the limit's exception must
        # never land between an accepted send and its commit. What is left is retried.
        budget_ends = monotonic() + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
        while self.pending:
            if monotonic() > budget_ends:
                self._retry_pending(1.0)
                break
            row = self.pending.pop(0)
            items = content.items_of(self.ranked.get(row.subscriber_id) or [])
            if not items:
                if claims.close_unclaimed(row, Status.SKIPPED, "nothing new on the subscriber's topics", self.now):
                    self.result.skipped.append(row.id)
                continue
            rendered, unsubscribe = self._render(row, items)
            if rendered is None or not self._ready_to_send(row):
                continue
            self._send(row, rendered, items, unsubscribe)

    def _render(self, row: Delivery, items) -> tuple[emails.RenderedEmail | None, str]:
        try:
            context = content.digest_context(
                subscriber=row.subscriber,
                frequency=row.issue.frequency,
                period=row.issue.period,
                items=items,
                web=content.web_url(row),
                topic_ids=self.followed.get(row.subscriber_id, {}),
            )
            return emails.render("digest", context), context["unsubscribe_url"]
        except SoftTimeLimitExceeded:
            raise  # out of time, not a bad template: the row stays QUEUED and is retried
        except Exception as exc:  # a template or data bug: record it, keep the batch going
            logger.exception("digest render failed", extra={"delivery": row.id})
            if claims.close_unclaimed(row, Status.FAILED, f"render failed: {exc!r}", self.now):
                self.result.failed.append(row.id)
            return None, ""

    def _ready_to_send(self, row: Delivery) -> bool:
        """The connection is open and a send slot is ours; otherwise the rest waits."""
        try:
            if not self.opened:  # lazily: a batch of skips never connects
                self.opened, self.opened_here = True, bool(self.connection.open())
            if not self.slots:  # send slots are taken a few at a time: one Redis call per few sends
                self.slots = min(SEND_SLOTS_PER_CALL, 1 + len(self.pending), self.limiter.burst)
                self.limiter.acquire(self.slots, max_wait=min(30.0, claims.sending_lease().total_seconds() / 4))
            self.slots -= 1
            return True
        except Exception as exc:  # SMTP server down, Redis down, rate-limit wait too long
            logger.warning("batch paused before sending", extra={"delivery": row.id, "error": repr(exc)})
            self.pending.insert(0, row)
            if self._refused_us(exc):
                return False
            claims.note_deferral([r.id for r in self.pending], f"not sent yet: {exc!r}")
            self._retry_pending(retry_delay(max(row.attempts, 1)))
            return False

    def _refused_us(self, exc: BaseException) -> bool:
        """A permanent refusal before any message (at EHLO or AUTH): it is about us, the
        same for every row, so the issues of the rows left pause at once (digests.breaker)
        and nobody is tried, failed or suppressed for it."""
        if not isinstance(exc, smtplib.SMTPResponseException) or refusal_of(exc).transient:
            return False
        refusal = refusal_of(exc)
        reason = f"the mail server refused us at {refusal.step.upper()}: {refusal.describe()}"
        for issue_id in {r.issue_id for r in self.pending}:
            breaker.pause(issue_id, reason)
        claims.note_deferral([r.id for r in self.pending], reason)
        self.result.paused.extend(r.id for r in self.pending)
        self.pending = []
        return True

    def _send(self, row: Delivery, rendered, items, unsubscribe: str) -> None:
        if len(self.lanes) == len(self.staged):
            self.lanes.append(smtp.sibling(self.connection))
        lane = self.lanes[len(self.staged)]
        if self.staged and not sending.can_open(lane):  # e.g. "421 too many connections": no row pays for it
            self.group_size = len(self.staged)
            self._hand_over()
            lane = self.lanes[0]
        outcome = sending.send_one(row, rendered, items, lane, unsubscribe=unsubscribe, staged=self.staged)
        if outcome is not None:
            self._count(row, outcome, lane)
        if self.staged and (len(self.staged) >= self.group_size or not self.pending):
            self._hand_over()

    def _hand_over(self) -> None:
        for row, outcome, lane in sending.hand_over(self.staged, self.accepted, answer_by=self.answer_by):
            self._count(row, outcome, lane)
        if len(self.accepted) >= RECORD_SENT_EVERY:
            claims.record_sent(self.accepted)

    def _count(self, row: Delivery, outcome: str, lane) -> None:
        if outcome == "paused":  # the circuit breaker tripped: send nothing more of this issue
            self.result.failed.append(row.id)
            held = [r for r in self.pending if r.issue_id == row.issue_id]
            self.result.paused.extend(r.id for r in held)
            self.pending = [r for r in self.pending if r.issue_id != row.issue_id]
            return
        getattr(self.result, outcome).append(row.id)
        if outcome == "retry":
            self.result.retry_in = max(self.result.retry_in, retry_delay(row.attempts + 1))
            if sending.connection_broken(lane):
                self._retry_pending(0.0)

    def _retry_pending(self, wait: float) -> None:
        self.result.retry.extend(r.id for r in self.pending)
        self.result.retry_in = max(self.result.retry_in, wait)
        self.pending = []

    # -- after sending ------------------------------------------------------------------

    def close(self) -> None:
        try:
            if self.staged:  # the last group, or what waited when the loop stopped early or raised
                self._hand_over()
        except Exception:  # left unclaimed: closing their connections drops the unfinished messages
            logger.exception("could not hand over the batch's last messages")
        try:
            claims.record_sent(self.accepted)
        except Exception:  # the database went away: those claims are counted as sent after their lease
            logger.exception("could not record sent deliveries", extra={"deliveries": self.accepted})
        if self.opened and (self.own_connection or self.opened_here):
            self.connection.close()
        for lane in self.lanes[1:]:  # a group's other connections are always this batch's own
            lane.close()

    def plan_retry(self) -> None:
        """When the task should come back for the rows left."""
        result = self.result
        if result.busy and not result.retry:
            # Come back just after the other claim's lease ends: by then it is SENT, or reclaimable.
            ends = self.busy_until or [timezone.now() + claims.sending_lease()]
            wait = max((until - timezone.now()).total_seconds() for until in ends) + 1
            result.retry_in = min(max(wait, 1.0), max_retry_delay())
        elif result.busy:
            result.retry_in = max(result.retry_in, 1.0)


def deliver_deferred(delivery_ids, *, rounds: int) -> int:
    """In-process runs (``send_digests`` without a broker): nobody else comes back for the
    rows a batch deferred, so send them again here, with the backoff a worker's retries
    would wait, for up to ``rounds`` rounds; returns how many are still deferred."""
    waiting = Delivery.objects.filter(id__in=list(delivery_ids), status=Status.QUEUED, issue__paused_at__isnull=True)
    ids = list(waiting.order_by("id").values_list("id", flat=True))
    for round_ in range(1, rounds + 1):
        if not ids:
            break
        time.sleep(retry_delay(round_))
        size = settings.DIGEST_BATCH_SIZE
        for start in range(0, len(ids), size):
            deliver_batch(ids[start : start + size])
        ids = list(waiting.order_by("id").values_list("id", flat=True))
    return len(ids)
