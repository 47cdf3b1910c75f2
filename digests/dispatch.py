"""Who is due, and their delivery rows: one per (subscriber, issue), made once.

The unique constraint on (subscriber, issue) makes a second tick, a second dispatcher or
``--now`` twice a no-op. New rows reach the workers through ``enqueue`` (the tasks'
``enqueue_deliveries``), called inside the transaction that made them: it sends them
once that transaction commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from digests import claims, schedule
from digests.models import Delivery, Issue
from digests.retries import rescue_after
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)

Status = Delivery.Status

# An issue's rows are made and enqueued this many at a time (a transaction each).
DISPATCH_CHUNK = 2000

# Takes the ids of rows just made (or re-queued) and returns how many batches it makes.
Enqueue = Callable[[list[int]], int]


@dataclass
class DispatchResult:
    issues: list[str] = field(default_factory=list)
    created: int = 0
    rescued: int = 0
    enqueued: int = 0
    batches: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def dispatch_due(
    *,
    enqueue: Enqueue,
    frequency: str | None = None,
    now: dt.datetime | None = None,
    force: bool = False,
    rescue_all_queued: bool = False,
) -> DispatchResult:
    """Create the deliveries of every subscriber whose send time has come, and enqueue them.

    Idempotent: rows are unique per (subscriber, issue); a row that exists is left alone.
    ``force`` treats every active subscriber as due for their current period. Also
    re-enqueues rows whose task was lost (QUEUED for long) or whose claim expired;
    ``rescue_all_queued`` every QUEUED row (in-process tasks: none can still hold one).

    Rows are made ``DISPATCH_CHUNK`` at a time, each chunk in its own transaction and
    enqueued when it commits: workers start on the first while the rest are made. A
    dispatcher stopped halfway leaves whole chunks, enqueued; the next tick makes the rest.
    """
    stamp = timezone.now()  # the real clock, for row timestamps; ``now`` only decides who is due
    now = now or stamp
    result = DispatchResult()
    issues: dict[tuple[str, str], Issue] = {}
    with_new: set[int] = set()
    created: set[int] = set()
    due_by_issue: dict[int, list[int]] = defaultdict(list)
    for freq, period, due in _due_groups(frequency=frequency, now=now, force=force):
        key = (freq, period)
        if key not in issues:
            issues[key] = Issue.objects.get_or_create(frequency=freq, period=period)[0]
        issue = issues[key]
        due_by_issue[issue.id].extend(due.exclude(deliveries__issue=issue).values_list("id", flat=True))
    # An issue's rows from every schedule together, then chunked: batches (and their SMTP
    # connections) carry many messages, not one per (weekday, hour, time zone).
    by_id = {issue.id: issue for issue in issues.values()}
    for issue_id, due_ids in due_by_issue.items():
        issue = by_id[issue_id]
        # In id order: two dispatchers inserting the same rows in different orders could
        # deadlock on the unique index; in one order, one waits for the other.
        due_ids.sort()
        for start in range(0, len(due_ids), DISPATCH_CHUNK):
            ids, batches = _create_deliveries(issue, due_ids[start : start + DISPATCH_CHUNK], stamp, enqueue)
            created.update(ids)
            result.batches += batches
            if ids:
                with_new.add(issue.id)
    result.created = len(created)
    result.issues = sorted(f"{i.frequency} {i.period}" for i in issues.values() if i.id in with_new)
    with transaction.atomic():
        rescued = _rescue_ids(now=stamp, frequency=frequency, all_queued=rescue_all_queued)
        result.rescued = len(rescued)
        again = [i for i in rescued if i not in created]
        result.enqueued = len(created) + len(again)
        result.batches += enqueue(again) if again else 0
    logger.info("digests dispatched", extra={f"dispatch_{key}": value for key, value in result.as_dict().items()})
    return result


def _due_groups(*, frequency: str | None, now: dt.datetime, force: bool):
    """(frequency, period, subscribers) for each schedule whose send time has come."""
    active = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE)
    if frequency:
        active = active.filter(frequency=frequency)
    schedules = active.order_by().values_list("frequency", "weekday", "send_hour", "timezone").distinct()
    for freq, weekday, send_hour, tz_name in schedules:
        plan = schedule.Schedule(freq, weekday, send_hour, tz_name)
        slot = schedule.current_slot(plan, now)
        if not (force or slot.is_due(now)):
            continue
        due = active.filter(frequency=freq, weekday=weekday, send_hour=send_hour, timezone=tz_name)
        if not force and slot.due_at is not None:
            # Someone who signed up after this period's send time waits for the next one.
            due = due.filter(Q(confirmed_at__isnull=True) | Q(confirmed_at__lte=slot.due_at))
        yield freq, slot.period, due


def count_due(*, frequency: str | None = None, now: dt.datetime | None = None, force: bool = False) -> dict[str, int]:
    """How many subscribers ``dispatch_due`` with these arguments would mail now, per issue
    ("weekly 2026-W48"): what an operator is asked to confirm. Changes nothing.

    The schedules due for one issue are OR-ed into one count: one query per issue (and
    one for the schedules), however many time zones and hours the subscribers chose."""
    now = now or timezone.now()
    per_issue: dict[tuple[str, str], object] = {}
    for freq, period, due in _due_groups(frequency=frequency, now=now, force=force):
        key = (freq, period)
        per_issue[key] = per_issue[key] | due if key in per_issue else due
    counts = {}
    for (freq, period), due in sorted(per_issue.items()):
        already = Delivery.objects.filter(issue__frequency=freq, issue__period=period).values("subscriber_id")
        if n := due.exclude(id__in=already).count():
            counts[f"{freq} {period}"] = n
    return counts


def _create_deliveries(
    issue: Issue, subscriber_ids: list[int], stamp: dt.datetime, enqueue: Enqueue
) -> tuple[list[int], int]:
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
        return ids, (enqueue(ids) if ids else 0)


def _insert_deliveries(issue: Issue, subscriber_ids: list[int], stamp: dt.datetime) -> list[int]:
    """PostgreSQL: the chunk's rows in one INSERT over an array of subscriber ids, skipping
    rows a concurrent dispatcher made; returns the new rows' ids. Written out because
    ``bulk_create`` builds a model object per row (bench/README.md, "dispatch"). Every
    other column gets what a new ``Delivery`` gets, so this stays in step with the model."""
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


def _rescue_ids(*, now: dt.datetime, frequency: str | None, all_queued: bool = False) -> list[int]:
    """Rows whose task was lost (Redis restarted) or whose worker died holding the claim."""
    queued_before = now if all_queued else now - rescue_after()
    stale = Delivery.objects.filter(
        Q(status=Status.QUEUED, updated_at__lt=queued_before)
        | Q(status=Status.SENDING, claimed_at__lt=now - claims.sending_lease()),
        issue__paused_at__isnull=True,  # a paused issue's rows wait for the operator's resume
    )
    if frequency:
        stale = stale.filter(issue__frequency=frequency)
    ids = list(stale.order_by("id").values_list("id", flat=True))
    if ids:
        # Touch them so the next tick does not enqueue them again while they wait.
        Delivery.objects.filter(id__in=ids, status=Status.QUEUED).update(updated_at=now)
        logger.warning("re-enqueueing stale deliveries", extra={"count": len(ids)})
    return ids


def retry_failed(issue: Issue, *, enqueue: Enqueue, delivery_ids=None) -> int:
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
            enqueue(ids)
    return len(ids)
