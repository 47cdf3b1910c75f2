"""The digest pipeline, from schedule to inbox, as plain functions (tasks only call them).

Exactly once, by data:

- ``dispatch_due`` creates one ``Delivery`` per (subscriber, issue); the unique
  constraint makes a second tick, a second dispatcher or ``--now`` twice a no-op.
- ``deliver_batch`` claims each row with a conditional UPDATE (``QUEUED`` → ``SENDING``,
  or a ``SENDING`` claim whose lease has run out), sends, then records ``SENT`` with
  another conditional UPDATE that only matches its own claim. A redelivered or
  duplicated task finds the row taken or done and does nothing.
- A claim left behind by a killed worker is reclaimed once its lease has expired. The
  lease (``sending_lease``) is at least the Celery hard time limit, and a claim only
  spans one message (rate-limit slot taken before claiming; SMTP send; commit), so a
  live worker's claim never expires under it: the task would have been killed first.
- Over SMTP the claim sits inside the SMTP transaction (``emails.smtp``): MAIL, RCPT,
  DATA and the whole message go first; then one database transaction claims the row
  (marked ``handed_over``), writes the final dot and commits. A server discards a
  message whose dot never came and the database drops a transaction whose client
  died, so a worker killed before the dot leaves nothing behind (the row is sent
  later), and one killed after the commit left leaves a message the server has: that
  claim is counted as sent when its lease runs out, never sent again. What is left is
  the gap between two socket writes (the dot, then COMMIT), and a server that goes
  silent after the dot (RFC 1047), which is retried. Rows the server accepted are
  marked ``SENT`` a few at a time (``_record_sent``): until then a handed-over claim
  already stands for "sent".
- With other backends (an ESP's API) the window is the classic one: the provider has
  accepted the message and the worker dies before the ``SENT`` commit; that row is
  reclaimed and sent again, with the stored Message-ID, so receivers that de-duplicate
  by Message-ID (Gmail among them) show one copy.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import re
import smtplib
import textwrap
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from time import monotonic

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import get_connection
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

import emails
from digests import ratelimit, schedule
from digests.models import Delivery, Issue
from emails import smtp
from subscriptions.models import Subscriber, Subscription

logger = logging.getLogger(__name__)

Status = Delivery.Status

# Transient failures are retried up to this many attempts in all (backoff doubles from
# DIGEST_RETRY_BASE_SECONDS up to DIGEST_MAX_RETRY_DELAY_SECONDS: about half an hour in
# all with the defaults). With one deferral in five, eight in a row happen to about one
# row in 390,000; five in a row (the old bound) hit one in 3,000.
MAX_ATTEMPTS = 8
# A batch takes send slots from the shared rate limiter this many at a time. Slots a
# batch ends without using are lost (the rate is never exceeded, only briefly underused).
SEND_SLOTS_PER_CALL = 10
# Over SMTP, rows whose message the server accepted are marked SENT this many at a time
# (one UPDATE). Until then each is a handed-over claim, which is never sent again: had the
# worker died first, it would be counted as sent when its lease ran out.
RECORD_SENT_EVERY = 25
# The dispatcher makes and enqueues an issue's rows this many at a time (a transaction each).
DISPATCH_CHUNK = 2000
EXCERPT_CHARS = 220
MAX_AUTHORS = 4


def sending_lease() -> dt.timedelta:
    """How long a SENDING claim is trusted: never shorter than the task's hard time limit."""
    return dt.timedelta(seconds=settings.DIGEST_SENDING_LEASE_SECONDS)


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


# --------------------------------------------------------------------------- results


@dataclass
class DispatchResult:
    issues: list[str] = field(default_factory=list)
    created: int = 0
    rescued: int = 0
    enqueued: int = 0
    batches: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


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
    retry_in: float = 0.0

    @property
    def retry_ids(self) -> list[int]:
        """Rows to try again later: transient failures and claims held by another worker."""
        return sorted(set(self.retry) | set(self.busy))

    def as_dict(self) -> dict:
        return {k: len(v) if isinstance(v, list) else v for k, v in asdict(self).items()}


# --------------------------------------------------------------------------- dispatch


def _enqueue(delivery_ids: list[int]) -> int:
    """Send batches of ids to the workers once the surrounding transaction commits."""
    from digests import tasks

    size = settings.DIGEST_BATCH_SIZE
    batches = [delivery_ids[i : i + size] for i in range(0, len(delivery_ids), size)]

    def send():
        for batch in batches:
            tasks.deliver_batch.delay(batch)

    transaction.on_commit(send)
    return len(batches)


def dispatch_due(
    *, frequency: str | None = None, now: dt.datetime | None = None, force: bool = False
) -> DispatchResult:
    """Create the deliveries of every subscriber whose send time has come, and enqueue them.

    Idempotent: rows are unique per (subscriber, issue); a row that exists is left alone.
    ``force`` treats every active subscriber as due for their current period. Also
    re-enqueues rows whose task was lost (QUEUED for long) or whose claim expired.

    Rows are made ``DISPATCH_CHUNK`` at a time, each chunk in its own transaction and
    enqueued when it commits: workers start on the first while the rest are made. A
    dispatcher stopped halfway leaves whole chunks, enqueued; the next tick makes the rest.
    """
    stamp = timezone.now()  # the real clock, for row timestamps; ``now`` only decides who is due
    now = now or stamp
    result = DispatchResult()
    active = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE)
    if frequency:
        active = active.filter(frequency=frequency)
    schedules = active.order_by().values_list("frequency", "weekday", "send_hour", "timezone").distinct()
    issues: dict[tuple[str, str], Issue] = {}
    with_new: set[int] = set()
    created: set[int] = set()
    for freq, weekday, send_hour, tz_name in schedules:
        plan = schedule.Schedule(freq, weekday, send_hour, tz_name)
        slot = schedule.current_slot(plan, now)
        if not (force or slot.is_due(now)):
            continue
        key = (freq, slot.period)
        if key not in issues:
            issues[key] = Issue.objects.get_or_create(frequency=freq, period=slot.period)[0]
        issue = issues[key]
        due = active.filter(frequency=freq, weekday=weekday, send_hour=send_hour, timezone=tz_name)
        if not force and slot.due_at is not None:
            # Someone who signed up after this period's send time waits for the next one.
            due = due.filter(Q(confirmed_at__isnull=True) | Q(confirmed_at__lte=slot.due_at))
        # In id order: two dispatchers inserting the same rows in different orders could
        # deadlock on the unique index; in one order, one waits for the other.
        due_ids = list(due.exclude(deliveries__issue=issue).order_by("id").values_list("id", flat=True))
        for start in range(0, len(due_ids), DISPATCH_CHUNK):
            ids, batches = _create_deliveries(issue, due_ids[start : start + DISPATCH_CHUNK], stamp)
            created.update(ids)
            result.batches += batches
            if ids:
                with_new.add(issue.id)
    result.created = len(created)
    result.issues = sorted(f"{i.frequency} {i.period}" for i in issues.values() if i.id in with_new)
    with transaction.atomic():
        rescued = _rescue_ids(now=stamp, frequency=frequency)
        result.rescued = len(rescued)
        again = [i for i in rescued if i not in created]
        result.enqueued = len(created) + len(again)
        result.batches += _enqueue(again) if again else 0
    logger.info("digests dispatched", extra={f"dispatch_{key}": value for key, value in result.as_dict().items()})
    return result


def _create_deliveries(issue: Issue, subscriber_ids: list[int], stamp: dt.datetime) -> tuple[list[int], int]:
    """One chunk of an issue's rows in a transaction of its own, enqueued once it commits;
    returns the ids this call made and the number of batches."""
    with transaction.atomic():
        if db_connection.vendor == "postgresql":
            ids = _insert_deliveries(issue, subscriber_ids, stamp)
        else:
            Delivery.objects.bulk_create(
                [Delivery(issue=issue, subscriber_id=sid, created_at=stamp) for sid in subscriber_ids],
                ignore_conflicts=True,  # a concurrent dispatcher got there first: its row stands
                batch_size=1000,
            )
            # Rows this call created carry its stamp; a concurrent dispatcher's rows do not.
            mine = Delivery.objects.filter(issue=issue, subscriber_id__in=subscriber_ids, created_at=stamp)
            ids = list(mine.filter(status=Status.QUEUED).order_by("id").values_list("id", flat=True))
        return ids, (_enqueue(ids) if ids else 0)


def _insert_deliveries(issue: Issue, subscriber_ids: list[int], stamp: dt.datetime) -> list[int]:
    """PostgreSQL: the chunk's rows in one INSERT over an array of subscriber ids, skipping
    rows a concurrent dispatcher made; returns the new rows' ids. ``bulk_create`` spent
    about 0.13 ms of CPU per row building model objects and their values (13 s for
    100,000 subscribers, on cores the workers need). Every other column gets what a new
    ``Delivery`` gets, so this stays in step with the model."""
    template = Delivery(issue=issue, subscriber_id=0, created_at=stamp)
    fields = [f for f in Delivery._meta.concrete_fields if not f.primary_key and f.attname != "subscriber_id"]
    values = [f.get_db_prep_save(f.pre_save(template, add=True), db_connection) for f in fields]
    quote = db_connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Delivery._meta.db_table)} ({quote('subscriber_id')}, {columns}) "  # noqa: S608
            f"SELECT subscriber, {placeholders} FROM unnest(%s::bigint[]) AS subscriber "
            "ON CONFLICT DO NOTHING RETURNING id",
            [*values, list(subscriber_ids)],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _rescue_ids(*, now: dt.datetime, frequency: str | None) -> list[int]:
    """Rows whose task was lost (Redis restarted) or whose worker died holding the claim."""
    stale = Delivery.objects.filter(
        Q(status=Status.QUEUED, updated_at__lt=now - rescue_after())
        | Q(status=Status.SENDING, claimed_at__lt=now - sending_lease())
    )
    if frequency:
        stale = stale.filter(issue__frequency=frequency)
    ids = list(stale.order_by("id").values_list("id", flat=True))
    if ids:
        # Touch them so the next tick does not enqueue them again while they wait.
        Delivery.objects.filter(id__in=ids, status=Status.QUEUED).update(updated_at=now)
        logger.warning("re-enqueueing stale deliveries", extra={"count": len(ids)})
    return ids


# --------------------------------------------------------------------------- context


@functools.lru_cache(maxsize=4096)
def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Two or three lines of the abstract, cut at a word."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    return textwrap.shorten(text, width=limit, placeholder="…")


def _authors(names) -> str:
    names = [str(n) for n in (names or []) if str(n).strip()]
    if len(names) > MAX_AUTHORS:
        return ", ".join(names[:MAX_AUTHORS]) + " et al."
    return ", ".join(names)


def _safe_url(url: str) -> str:
    """Only http(s) links reach a mailbox (an imported ``javascript:`` URL would not)."""
    return url if (url or "").lower().startswith(("https://", "http://")) else settings.SITE_URL


def _phrase(names: list[str]) -> str:
    if not names:
        return "your topics"
    if len(names) == 1:
        return names[0]
    if len(names) <= 3:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return f"{', '.join(names[:2])} and {len(names) - 2} more topics"


def web_url(delivery: Delivery) -> str:
    """The signed "view in browser" link of one delivered copy."""
    from subscriptions.links import absolute_url
    from subscriptions.tokens import make_token

    return absolute_url("digests:web", make_token("webview", delivery.subscriber_id, d=delivery.id))


@dataclass
class DigestItem:
    """One paper as a digest shows it (ranking's RankedPaper, or a stored copy's item)."""

    paper: object
    topic: str | None
    why: str


@dataclass(slots=True)
class PaperEntry:
    """One paper as the digest templates show it. An object, not a dict: Jinja2 looks
    ``paper.title`` up as an attribute first, and on a dict that lookup raises and
    catches an AttributeError each time (a quarter of rendering a digest)."""

    title: str
    url: str
    authors: str
    upvotes: int
    excerpt: str
    why: str
    up_url: str
    down_url: str


def digest_context(
    *,
    subscriber,
    frequency: str,
    period: str,
    items: list[DigestItem],
    web: str | None,
    topic_ids: dict[str, int] | None = None,
) -> dict:
    """Everything the digest templates show, computed once for the HTML, text and subject.

    ``topic_ids``: the subscriber's topics (query: id), when the caller has them already.
    """
    from ranking.feedback import FeedbackLinks
    from subscriptions.links import preferences_url, unsubscribe_url

    if topic_ids is None:
        topic_ids = {t.query: t.id for t in subscriber.topics.all()}
    feedback = FeedbackLinks(subscriber.id)
    sections: dict[str, list[PaperEntry]] = {}
    for item in items:
        paper = item.paper
        name = item.topic or "More papers for you"
        up_url, down_url = feedback.of(paper.id, topic_ids.get(item.topic))
        sections.setdefault(name, []).append(
            PaperEntry(
                title=" ".join((paper.title or "").split()),
                url=_safe_url(paper.url),
                authors=_authors(paper.authors),
                upvotes=paper.upvotes or 0,
                excerpt=_excerpt(paper.abstract),
                why=" ".join((item.why or "").split()),
                up_url=up_url,
                down_url=down_url,
            )
        )
    topics = [{"name": name, "papers": papers} for name, papers in sections.items()]
    followed = sorted(topic_ids) or [t["name"] for t in topics]
    label = schedule.period_label(frequency, period)
    phrase = _phrase([t["name"] for t in topics])
    count = len(items)
    first = topics[0]["papers"][0].title if topics else ""
    return {
        "frequency": frequency,
        "period": period,
        "period_label": label,
        "period_title": label[:1].upper() + label[1:],
        "paper_count": count,
        "topics": topics,
        "topics_phrase": phrase,
        "preheader": textwrap.shorten(f"{first} — and {count - 1} more new papers picked for you", 140, placeholder="…")
        if count > 1
        else textwrap.shorten(first, 140, placeholder="…"),
        "subscriber_email": subscriber.email,
        "preferences_url": preferences_url(subscriber),
        "unsubscribe_url": unsubscribe_url(subscriber),
        "web_url": web,
        "why_text": (
            f"You receive this {frequency} email because {subscriber.email} subscribed to papers on "
            f"{_phrase(followed)} at {settings.SITE_URL.split('://', 1)[-1]}."
        ),
    }


def list_id(frequency: str) -> str:
    return f"{settings.SENDER_NAME} {frequency} digest <{frequency}.digest.{settings.MAIL_DOMAIN}>"


def _items(ranked) -> list[DigestItem]:
    return [DigestItem(r.paper, r.topic, r.why) for r in ranked]


def _rank(subscribers, *, frequency: str, period: str, now: dt.datetime) -> dict[int, list]:
    from ranking import rank_for_subscribers

    since = now - schedule.lookback(frequency, period)
    return rank_for_subscribers(subscribers, since=since, limit=settings.DIGEST_MAX_PAPERS)


# --------------------------------------------------------------------------- delivery


class _Transient(Exception):
    """A failure worth retrying (4xx, connection trouble, rate-limit wait too long)."""


_USER_UNKNOWN = re.compile(
    r"user unknown|unknown user|no such user|does not exist|mailbox (?:unavailable|not found|disabled)|"
    r"invalid (?:recipient|mailbox|address)|recipient (?:rejected|not found)|address rejected",
    re.IGNORECASE,
)
_POLICY = re.compile(r"spam|policy|blocked|block list|blacklist|reputation|rate", re.IGNORECASE)
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def smtp_failure(exc: BaseException) -> tuple[int | None, str]:
    """The SMTP reply code and text behind an exception (None for connection trouble)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return code, text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        return exc.smtp_code, text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return None, str(exc) or type(exc).__name__


def is_transient(code: int | None) -> bool:
    return code is None or 400 <= code < 500


def is_user_unknown(code: int | None, text: str) -> bool:
    """A permanent answer that says this address cannot receive mail (suppress it)."""
    if code is None or not 500 <= code < 600:
        return False
    enhanced = _ENHANCED.search(text or "")
    if enhanced:
        cls, subject, detail = enhanced.groups()
        return cls == "5" and (subject == "1" or (subject, detail) == ("2", "1"))
    return bool(_USER_UNKNOWN.search(text or "")) or (code in (550, 551, 553) and not _POLICY.search(text or ""))


def _claimable(now: dt.datetime) -> Q:
    """Rows a worker may take: queued, or claimed by a worker that died before handing the
    message over (its lease ran out). A handed-over claim is never taken again."""
    return Q(status=Status.QUEUED) | Q(status=Status.SENDING, handed_over=False, claimed_at__lt=now - sending_lease())


def _finish(delivery: Delivery, claimed_at: dt.datetime, **fields) -> bool:
    """Record the outcome of our own claim (and only ours)."""
    updated = Delivery.objects.filter(id=delivery.id, status=Status.SENDING, claimed_at=claimed_at).update(
        updated_at=timezone.now(), **fields
    )
    if not updated:
        logger.error("claim lost before its outcome was recorded", extra={"delivery": delivery.id})
    return bool(updated)


def _close_unclaimed(delivery: Delivery, status: str, reason: str, now: dt.datetime) -> bool:
    """Skip/suppress/fail a row we have not claimed, if nobody else holds it."""
    return bool(
        Delivery.objects.filter(_claimable(now), id=delivery.id).update(
            status=status, last_error=reason[:1000], updated_at=timezone.now()
        )
    )


def deliver_batch(delivery_ids, *, connection=None, limiter=None) -> BatchResult:
    """Render and send a batch of deliveries; record each outcome. Over SMTP the batch uses
    up to ``DIGEST_SMTP_CONNECTIONS`` connections (``connection`` and siblings of it), a
    group of that many messages waiting for their final dots side by side.

    Queries: one for the rows (with subscriber and issue), one for the subscribers'
    topics, the ranking's own (per issue in the batch, not per subscriber), then per
    row the claim, and the outcome: over SMTP one UPDATE per ``RECORD_SENT_EVERY`` sent
    rows, with other backends one per row.
    """
    now = timezone.now()
    result = BatchResult()
    rows = list(Delivery.objects.filter(id__in=list(delivery_ids)).select_related("issue", "subscriber").order_by("id"))
    followed = _followed_topics({row.subscriber_id for row in rows})
    lease_end = now - sending_lease()
    candidates: list[Delivery] = []
    busy_until: list[dt.datetime] = []
    for row in rows:
        expired = row.status == Status.SENDING and row.claimed_at < lease_end
        if row.status == Status.QUEUED or (expired and not row.handed_over):
            candidates.append(row)
        elif expired:  # handed over, then its worker died: the server has the message
            if _presume_sent(row, now):
                result.presumed_sent.append(row.id)
            else:
                result.already_done.append(row.id)
        elif row.status == Status.SENDING:
            result.busy.append(row.id)
            busy_until.append(row.claimed_at + sending_lease())
        else:
            result.already_done.append(row.id)

    sendable: list[Delivery] = []
    for row in candidates:
        subscriber = row.subscriber
        if subscriber.status == Subscriber.Status.BOUNCED:
            if _close_unclaimed(row, Status.SUPPRESSED, f"address suppressed: {subscriber.suppression_reason}", now):
                result.suppressed.append(row.id)
        elif subscriber.status != Subscriber.Status.ACTIVE:
            if _close_unclaimed(row, Status.SKIPPED, f"subscriber is {subscriber.status}", now):
                result.skipped.append(row.id)
        else:
            sendable.append(row)

    by_issue: dict[int, list[Delivery]] = defaultdict(list)
    for row in sendable:
        by_issue[row.issue_id].append(row)
    ranked: dict[int, list] = {}
    for group in by_issue.values():
        issue = group[0].issue
        ranked.update(_rank([r.subscriber for r in group], frequency=issue.frequency, period=issue.period, now=now))

    limiter = limiter or ratelimit.get_limiter()
    own_connection = connection is None
    connection = connection or get_connection()
    opened = opened_here = False
    slots = 0  # send slots taken from the rate limiter and not used yet
    accepted: list[int] = []  # handed over and accepted by the SMTP server, not yet recorded SENT
    # SMTP: up to DIGEST_SMTP_CONNECTIONS messages wait at their servers, all but the final
    # dot, and are claimed in one transaction (one BEGIN and COMMIT for the group).
    lanes = [connection]
    group_size = settings.DIGEST_SMTP_CONNECTIONS  # fewer if the server refuses more connections
    staged: list[_Staged] = []
    pending = list(sendable)

    def count(row: Delivery, outcome: str, lane) -> None:
        nonlocal pending
        getattr(result, outcome).append(row.id)
        if outcome == "retry":
            result.retry_in = max(result.retry_in, retry_delay(row.attempts + 1))
            if _connection_broken(lane):
                result.retry.extend(r.id for r in pending)
                pending = []

    def hand_over() -> None:
        for row, outcome, lane in _hand_over(staged, accepted):
            count(row, outcome, lane)
        if len(accepted) >= RECORD_SENT_EVERY:
            _record_sent(accepted)

    # Stop claiming well inside the task's soft time limit: the limit's exception must
    # never land between an accepted send and its commit. What is left is retried.
    budget_ends = monotonic() + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    try:
        while pending:
            if monotonic() > budget_ends:
                result.retry.extend(r.id for r in pending)
                result.retry_in = max(result.retry_in, 1.0)
                break
            row = pending.pop(0)
            items = _items(ranked.get(row.subscriber_id) or [])
            if not items:
                if _close_unclaimed(row, Status.SKIPPED, "nothing new on the subscriber's topics", now):
                    result.skipped.append(row.id)
                continue
            try:
                context = digest_context(
                    subscriber=row.subscriber,
                    frequency=row.issue.frequency,
                    period=row.issue.period,
                    items=items,
                    web=web_url(row),
                    topic_ids=followed.get(row.subscriber_id, {}),
                )
                rendered = emails.render("digest", context)
            except SoftTimeLimitExceeded:
                raise  # out of time, not a bad template: the row stays QUEUED and is retried
            except Exception as exc:  # a template or data bug: record it, keep the batch going
                logger.exception("digest render failed", extra={"delivery": row.id})
                if _close_unclaimed(row, Status.FAILED, f"render failed: {exc!r}", now):
                    result.failed.append(row.id)
                continue
            try:
                if not opened:  # lazily: a batch of skips never connects
                    opened, opened_here = True, bool(connection.open())
                if not slots:  # send slots are taken a few at a time: one Redis call per few sends
                    slots = min(SEND_SLOTS_PER_CALL, 1 + len(pending), limiter.burst)
                    limiter.acquire(slots, max_wait=min(30.0, sending_lease().total_seconds() / 4))
                slots -= 1
            except Exception as exc:  # SMTP server down, Redis down, rate-limit wait too long
                logger.warning("batch paused before sending", extra={"delivery": row.id, "error": repr(exc)})
                result.retry.extend([row.id, *(r.id for r in pending)])
                result.retry_in = max(result.retry_in, retry_delay(max(row.attempts, 1)))
                pending = []
                break
            if len(lanes) == len(staged):
                lanes.append(smtp.sibling(connection))
            lane = lanes[len(staged)]
            if staged and not _can_open(lane):  # e.g. "421 too many connections": no row pays for it
                group_size = len(staged)
                hand_over()
                lane = lanes[0]
            outcome = _send_one(row, rendered, items, lane, unsubscribe=context["unsubscribe_url"], staged=staged)
            if outcome is not None:
                count(row, outcome, lane)
            if staged and (len(staged) >= group_size or not pending):
                hand_over()
    finally:
        try:
            if staged:  # the last group, or what waited when the loop stopped early or raised
                hand_over()
        except Exception:  # left unclaimed: closing their connections drops the unfinished messages
            logger.exception("could not hand over the batch's last messages")
        try:
            _record_sent(accepted)
        except Exception:  # the database went away: those claims are counted as sent after their lease
            logger.exception("could not record sent deliveries", extra={"deliveries": accepted})
        if opened and (own_connection or opened_here):
            connection.close()
        for lane in lanes[1:]:  # a group's other connections are always this batch's own
            lane.close()
    if result.busy and not result.retry:
        # Come back just after the other claim's lease ends: by then it is SENT, or reclaimable.
        ends = busy_until or [timezone.now() + sending_lease()]
        wait = max((until - timezone.now()).total_seconds() for until in ends) + 1
        result.retry_in = min(max(wait, 1.0), max_retry_delay())
    elif result.busy:
        result.retry_in = max(result.retry_in, 1.0)
    logger.info("digest batch delivered", extra={f"batch_{key}": value for key, value in result.as_dict().items()})
    return result


def _can_open(connection) -> bool:
    """Whether one more SMTP connection of a batch opens (it is opened now if it was not)."""
    try:
        smtp.session_of(connection, reopen=True)
    except Exception as exc:
        logger.warning("SMTP server refused one more connection; the batch uses fewer", extra={"error": repr(exc)})
        return False
    return True


def _followed_topics(subscriber_ids) -> dict[int, dict[str, int]]:
    """Each subscriber's topics (query: id), in one query. Names and ids only (a topic's
    stored embedding is 1.5 KB the email does not show), and no model objects: a prefetch
    of the same spent about 0.1 ms of CPU per row making them."""
    followed: dict[int, dict[str, int]] = defaultdict(dict)
    if subscriber_ids:
        for subscriber_id, topic_id, query in Subscription.objects.filter(
            subscriber_id__in=list(subscriber_ids)
        ).values_list("subscriber_id", "topic_id", "topic__query"):
            followed[subscriber_id][query] = topic_id
    return followed


def _connection_broken(connection) -> bool:
    smtp = getattr(connection, "connection", None)
    if smtp is None:
        return False
    try:
        return smtp.noop()[0] != 250
    except Exception:
        connection.connection = None  # smtplib leaves a dead socket behind; open a new one next time
        return True


def _send_one(
    row: Delivery, rendered, items: list[DigestItem], connection, *, unsubscribe: str, staged: list[_Staged]
) -> str | None:
    """Send one row. Over SMTP the message goes to the server without its final dot and
    the row joins ``staged``, for ``_hand_over`` to claim and finish (returns None);
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
        return _record_failure(row, exc, claimed_at=None)
    if session is not None:
        return _stage(row, message, session, connection, carried, staged)

    # Any other backend (an ESP's API, the outbox, the console): claim, send, record.
    claimed_at = _claim(row, carried, handed_over=False)
    if claimed_at is None:
        return "busy"  # another worker holds or finished it
    try:
        message.send()
    except SoftTimeLimitExceeded:
        raise  # out of time mid-send: the claim stays SENDING and is retaken after its lease
    except Exception as exc:
        return _record_failure(row, exc, claimed_at=claimed_at)
    # The provider has the message; a worker killed before this UPDATE commits leaves a
    # claim that is retaken after its lease and sent again (same Message-ID).
    _finish(row, claimed_at, status=Status.SENT, sent_at=timezone.now(), last_error="")
    return "sent"


@dataclass(slots=True)
class _Staged:
    """A message at its SMTP server but for the final dot, and the row it is for."""

    row: Delivery
    connection: object
    session: smtplib.SMTP
    carried: dict


def _stage(row: Delivery, message, session, connection, carried: dict, staged: list[_Staged]) -> str | None:
    """SMTP: MAIL, RCPT, DATA and the whole message but its final dot."""
    try:
        smtp.begin(session, *smtp.envelope(message), message.wire_bytes())
    except SoftTimeLimitExceeded:
        raise  # nothing claimed, nothing delivered: the row is still QUEUED
    except Exception as exc:  # refused at MAIL/RCPT/DATA, or the connection broke: nothing delivered
        return _record_failure(row, exc, claimed_at=None)
    staged.append(_Staged(row, connection, session, carried))
    return None


def _hand_over(staged: list[_Staged], accepted: list[int]) -> list[tuple[Delivery, str, object]]:
    """Claim the staged rows and write their final dots in one transaction, committed right
    after the last dot; then read the servers' answers. Sent rows go to ``accepted`` (for
    ``_record_sent``). Returns (row, BatchResult field, its connection) for each, and
    empties ``staged``."""
    group = list(staged)
    staged.clear()
    claims: dict[int, dt.datetime] = {}
    outcomes: dict[int, str] = {}
    try:
        with transaction.atomic():
            for item in group:
                claimed_at = _claim(item.row, item.carried, handed_over=True)
                if claimed_at is not None:
                    claims[item.row.id] = claimed_at
            broken: list[tuple[_Staged, BaseException]] = []
            for item in group:
                if item.row.id in claims:
                    try:
                        smtp.send_final_dot(item.session)
                    except (smtplib.SMTPException, OSError) as exc:
                        broken.append((item, exc))
            for item, exc in broken:  # no dot, no delivery: undo that claim before COMMIT
                smtp.abandon(item.connection)
                outcomes[item.row.id] = _record_failure(item.row, exc, claimed_at=claims.pop(item.row.id))
            # ---- THE ONLY WINDOW LEFT ------------------------------------------------
            # Between writing the dots and writing COMMIT: a few socket writes in a row,
            # nothing waited for. A worker killed before a dot leaves no claim (the
            # transaction dies with its connection) and no message (the server drops an
            # unfinished one): the row is sent later. One killed after COMMIT went out
            # leaves handed-over claims for messages the servers have: counted as sent
            # when their lease runs out, never sent twice.
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # a claim or the COMMIT failed: nothing committed
        results = []
        for item in group:
            smtp.abandon(item.connection)
            results.append((item.row, _record_failure(item.row, exc, claimed_at=None), item.connection))
        return results
    results = []
    for item in group:
        row_id = item.row.id
        if row_id in outcomes:
            results.append((item.row, outcomes[row_id], item.connection))
        elif row_id not in claims:
            smtp.abandon(item.connection)  # another worker has the row: the server drops our unfinished copy
            results.append((item.row, "busy", item.connection))
        else:
            try:
                smtp.read_answer(item.session)
            except SoftTimeLimitExceeded:
                raise  # the server has the message: the handed-over claim is counted as sent after its lease
            except Exception as exc:  # refused after the dot, or the server went silent (RFC 1047): retried
                results.append((item.row, _record_failure(item.row, exc, claimed_at=claims[row_id]), item.connection))
                continue
            accepted.append(row_id)
            results.append((item.row, "sent", item.connection))
    return results


def _record_sent(accepted: list[int]) -> None:
    """Mark rows the SMTP server accepted as SENT, in one UPDATE, and empty the list.

    Only handed-over claims match; a handed-over claim is never taken by another worker,
    only counted as sent once its lease runs out (``_presume_sent``), so the row is ours.
    ``sent_at`` is the claim's time: the final dot was written right after it.
    """
    if not accepted:
        return
    Delivery.objects.filter(id__in=list(accepted), status=Status.SENDING, handed_over=True).update(
        status=Status.SENT, sent_at=F("claimed_at"), handed_over=False, last_error="", updated_at=timezone.now()
    )
    accepted.clear()


def _claim(row: Delivery, carried: dict, *, handed_over: bool) -> dt.datetime | None:
    """Take the row for this attempt (a conditional UPDATE); None when another worker has it.

    The row also gets what this copy shows (``carried``: Message-ID, papers, whys): kept
    if it turns out sent, replaced by a retry. ``_CLAIM_SQL`` is the UPDATE that
    ``Delivery.objects.filter(_claimable(now), id=row.id).update(...)`` makes; the ORM
    spent about 0.3 ms of CPU building it for every message.
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
    binding): Django's default cursor quotes every value into the SQL text on the client,
    which for the copy's items cost about a third of the claim. No named prepared statement
    is made (Django keeps psycopg's ``prepare_threshold`` off, for connection poolers).
    Wrapped as Django wraps its own, so query logging and counting see it."""
    if db_connection.vendor != "postgresql":
        return db_connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    db_connection.ensure_connection()
    with db_connection.wrap_database_errors:
        cursor = ServerBindingCursor(db_connection.connection)
    if db_connection.queries_logged:
        return db_connection.make_debug_cursor(cursor)
    return db_connection.make_cursor(cursor)


_CLAIM_SQL = """
UPDATE digests_delivery
SET status = 'sending', claimed_at = %s, attempts = attempts + 1, handed_over = %s, updated_at = %s,
    message_id = %s, paper_ids = %s, items = %s
WHERE id = %s AND (status = 'queued' OR (status = 'sending' AND handed_over = %s AND claimed_at < %s))
"""


def _record_failure(row: Delivery, exc: BaseException, *, claimed_at: dt.datetime | None) -> str:
    """Record a failed attempt (our claim's, or an unclaimed row's) and say how to count it.

    Transient failures (4xx, connection trouble) go back to QUEUED until ``MAX_ATTEMPTS``;
    permanent ones fail, and an unknown user's address is suppressed.
    """
    code, text = smtp_failure(exc)
    error = f"{code or ''} {text}".strip()[:1000]
    attempt = row.attempts + 1
    if not isinstance(exc, (smtplib.SMTPException, OSError)):
        logger.exception("digest send failed unexpectedly", extra={"delivery": row.id})
        return "failed" if _settle(row, claimed_at, status=Status.FAILED, last_error=error) else "busy"
    if is_transient(code):
        final = attempt >= MAX_ATTEMPTS
        status = Status.FAILED if final else Status.QUEUED
        if not _settle(row, claimed_at, status=status, last_error=error):
            return "busy"
        logger.warning("digest send deferred", extra={"delivery": row.id, "attempt": attempt, "error": error})
        return "failed" if final else "retry"
    if not _settle(row, claimed_at, status=Status.FAILED, last_error=error):
        return "busy"
    if is_user_unknown(code, text):
        suppress_address(row.subscriber.email, reason=f"hard bounce: {error}"[:200])
        return "suppressed"
    return "failed"


def _settle(row: Delivery, claimed_at: dt.datetime | None, **fields) -> bool:
    """Record an attempt's outcome on our own claim, or on the row if nobody holds it."""
    if claimed_at is not None:
        return _finish(row, claimed_at, handed_over=False, **fields)
    now = timezone.now()
    return bool(
        Delivery.objects.filter(_claimable(now), id=row.id).update(attempts=F("attempts") + 1, updated_at=now, **fields)
    )


def _presume_sent(row: Delivery, now: dt.datetime) -> bool:
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


# --------------------------------------------------------------------------- previews


def _next_digest(subscriber, *, now: dt.datetime):
    slot = schedule.next_slot(schedule.Schedule.of(subscriber), now)
    ranked = _rank([subscriber], frequency=slot.frequency, period=slot.period, now=now)
    return slot, _items(ranked.get(subscriber.id) or [])


def preview_digest(subscriber, *, now: dt.datetime | None = None) -> emails.RenderedEmail:
    """Exactly what the subscriber would get next (their papers as of now); records nothing.

    An empty digest (nothing relevant) renders too, so an operator can see it would be skipped.
    """
    slot, items = _next_digest(subscriber, now=now or timezone.now())
    context = digest_context(subscriber=subscriber, frequency=slot.frequency, period=slot.period, items=items, web=None)
    return emails.render("digest", context)


def send_test_digest(*, subscriber, to_address: str, connection=None) -> emails.RenderedEmail:
    """Send the subscriber's next digest to another address (an operator's), recording nothing.

    It carries no List-Unsubscribe header: a one-click unsubscribe from the operator's
    mailbox would unsubscribe the subscriber.
    """
    rendered = preview_digest(subscriber)
    rendered = emails.RenderedEmail(subject=f"[Test] {rendered.subject}", text=rendered.text, html=rendered.html)
    emails.build_message(rendered, to=to_address, list_id=list_id(subscriber.frequency), connection=connection).send()
    return rendered


def web_version(delivery: Delivery) -> str:
    """The HTML of a delivered copy, rebuilt from what it showed (papers, topics, whys)."""
    from papers.models import Paper

    stored = delivery.items or [{"paper": pid, "topic": None, "why": ""} for pid in delivery.paper_ids]
    papers = Paper.objects.in_bulk([entry["paper"] for entry in stored])
    items = [
        DigestItem(papers[entry["paper"]], entry.get("topic"), entry.get("why", ""))
        for entry in stored
        if entry["paper"] in papers
    ]
    context = digest_context(
        subscriber=delivery.subscriber,
        frequency=delivery.issue.frequency,
        period=delivery.issue.period,
        items=items,
        web=None,
    )
    return emails.render("digest", context).html


# --------------------------------------------------------------------------- operators


def retry_failed(issue: Issue, *, delivery_ids=None) -> int:
    """Queue an issue's failed deliveries (or only ``delivery_ids`` of them) again, for
    subscribers still active; returns how many."""
    failed = Delivery.objects.filter(issue=issue, status=Status.FAILED, subscriber__status=Subscriber.Status.ACTIVE)
    if delivery_ids is not None:
        failed = failed.filter(id__in=list(delivery_ids))
    with transaction.atomic():
        ids = list(failed.order_by("id").values_list("id", flat=True))
        if ids:
            Delivery.objects.filter(id__in=ids, status=Status.FAILED).update(
                status=Status.QUEUED, attempts=0, claimed_at=None, updated_at=timezone.now()
            )
            _enqueue(ids)
    return len(ids)


def suppress_address(email: str, *, reason: str) -> int:
    """Stop all mail to an address (hard bounce, complaint, operator); returns subscribers changed.

    Its queued deliveries become SUPPRESSED. Unsubscribed people are left as they are.
    """
    email = (email or "").strip().lower()
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Subscriber.objects.filter(email=email)
            .exclude(status__in=[Subscriber.Status.BOUNCED, Subscriber.Status.UNSUBSCRIBED])
            .update(status=Subscriber.Status.BOUNCED, suppressed_at=now, suppression_reason=(reason or "")[:200])
        )
        Delivery.objects.filter(subscriber__email=email, status=Status.QUEUED).update(
            status=Status.SUPPRESSED, last_error=f"address suppressed: {reason}"[:1000], updated_at=now
        )
    if changed:
        logger.warning("address suppressed", extra={"reason": reason})
    return changed


def restore_address(email: str) -> int:
    """Lift a suppression (the operator fixed the cause); returns subscribers changed."""
    email = (email or "").strip().lower()
    return Subscriber.objects.filter(email=email, status=Subscriber.Status.BOUNCED).update(
        status=Subscriber.Status.ACTIVE, suppressed_at=None, suppression_reason=""
    )


SUPPRESSING_EVENTS = {"bounced", "complained"}
SUPPRESSING_REJECTS = {"bounced", "invalid", "spam"}


def handle_provider_event(
    *,
    event_type: str,
    recipient: str | None,
    reject_reason: str | None = None,
    description: str = "",
    message_id: str | None = None,
    provider: str = "",
) -> str:
    """React to a provider's event (via anymail): hard bounces and complaints suppress.

    Returns what was done: "suppressed", "unsubscribed" or "ignored". Soft bounces
    (``deferred``) are the provider's to retry and change nothing here.
    """
    if not recipient:
        return "ignored"
    if event_type in SUPPRESSING_EVENTS or (event_type == "rejected" and reject_reason in SUPPRESSING_REJECTS):
        reason = f"{provider} {event_type}: {reject_reason or ''} {description or ''}"
        suppress_address(recipient, reason=" ".join(reason.split())[:200])
        return "suppressed"
    if event_type == "unsubscribed":
        Subscriber.objects.filter(email=recipient.strip().lower(), status=Subscriber.Status.ACTIVE).update(
            status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=timezone.now()
        )
        return "unsubscribed"
    return "ignored"
