"""Read-only aggregates for the staff dashboard.

Every function runs a fixed, small number of aggregate queries whatever the size
of the data (100k subscribers, 1M deliveries): counts are computed by the database
with GROUP BY / conditional COUNT, never by loading rows into Python. The number of
queries per function is pinned in tests/digests/test_dashboard.py.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber, TruncDate, TruncWeek
from django.utils import timezone

from digests.models import Delivery, Issue
from digestsite import cache as shared_cache
from papers.models import ImportRun, Paper
from subscriptions.models import Feedback, Subscriber, Subscription, Topic

GROWTH_WEEKS = 12
PAPER_DAYS = 30
RECENT_ISSUES = 8
TOP_TOPICS = 10
LATEST_FAILURES = 10
MAX_IMPORT_SOURCES = 50
FINISHED_ISSUE_CACHE_SECONDS = 600

SUBSCRIBER_STATUSES = [value for value, _ in Subscriber.Status.choices]
DONE_STATUSES = [Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.SKIPPED, Delivery.Status.SUPPRESSED]
PENDING_STATUSES = [Delivery.Status.QUEUED, Delivery.Status.SENDING]
DELIVERY_STATUSES = [value for value, _ in Delivery.Status.choices]


def _as_date(value) -> date:
    """TruncWeek/TruncDate give datetimes on some backends and dates on others."""
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# Subscribers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekPoint:
    week_start: date
    signups: int
    unsubscribes: int
    total: int  # signed up minus unsubscribed, at the end of the week


@dataclass(frozen=True)
class SubscriberStats:
    by_status: dict[str, int]
    total: int
    confirmed: int
    confirmation_rate: float | None  # share of all sign-ups that confirmed; None without sign-ups
    growth: list[WeekPoint]


def subscriber_stats(*, now: datetime | None = None) -> SubscriberStats:
    """Totals by status, confirmation rate and weekly growth: three queries."""
    now = timezone.localtime(now or timezone.now())
    this_monday = now.date() - timedelta(days=now.weekday())
    weeks = [this_monday - timedelta(weeks=n) for n in range(GROWTH_WEEKS - 1, -1, -1)]
    window_start = _local_midnight(weeks[0])

    counts = Subscriber.objects.aggregate(
        total=Count("id"),
        confirmed=Count("id", filter=Q(confirmed_at__isnull=False)),
        signed_up_before=Count("id", filter=Q(created_at__lt=window_start)),
        unsubscribed_before=Count("id", filter=Q(unsubscribed_at__lt=window_start)),
        **{f"status_{status}": Count("id", filter=Q(status=status)) for status in SUBSCRIBER_STATUSES},
    )
    signups = {
        _as_date(row["week"]): row["n"]
        for row in Subscriber.objects.filter(created_at__gte=window_start)
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(n=Count("id"))
        .values("week", "n")
    }
    unsubscribes = {
        _as_date(row["week"]): row["n"]
        for row in Subscriber.objects.filter(unsubscribed_at__gte=window_start)
        .annotate(week=TruncWeek("unsubscribed_at"))
        .values("week")
        .annotate(n=Count("id"))
        .values("week", "n")
    }

    running = counts["signed_up_before"] - counts["unsubscribed_before"]
    growth = []
    for week in weeks:
        running += signups.get(week, 0) - unsubscribes.get(week, 0)
        growth.append(WeekPoint(week, signups.get(week, 0), unsubscribes.get(week, 0), running))

    total = counts["total"]
    return SubscriberStats(
        by_status={status: counts[f"status_{status}"] for status in SUBSCRIBER_STATUSES},
        total=total,
        confirmed=counts["confirmed"],
        confirmation_rate=(counts["confirmed"] / total) if total else None,
        growth=growth,
    )


# Issues and deliveries ----------------------------------------------------------------


@dataclass(frozen=True)
class IssueProgress:
    issue_id: int
    label: str
    created_at: datetime
    counts: dict[str, int]  # every Delivery.Status, zero when absent

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def pending(self) -> int:
        return sum(self.counts[status] for status in PENDING_STATUSES)

    @property
    def done(self) -> int:
        return self.total - self.pending

    @property
    def in_progress(self) -> bool:
        return self.pending > 0

    @property
    def percent(self) -> float:
        return round(100 * self.done / self.total, 1) if self.total else 100.0

    def as_json(self) -> dict:
        return {
            "issue_id": self.issue_id,
            "label": self.label,
            "counts": self.counts,
            "total": self.total,
            "done": self.done,
            "pending": self.pending,
            "percent": self.percent,
            "in_progress": self.in_progress,
        }


def _progress_rows(issues: list[dict], counts: list[dict]) -> list[IssueProgress]:
    by_issue: dict[int, dict[str, int]] = {issue["id"]: dict.fromkeys(DELIVERY_STATUSES, 0) for issue in issues}
    for row in counts:
        by_issue[row["issue_id"]][row["status"]] = row["n"]
    return [
        IssueProgress(
            issue_id=issue["id"],
            label=f"{issue['frequency']} {issue['period']}",
            created_at=issue["created_at"],
            counts=by_issue[issue["id"]],
        )
        for issue in issues
    ]


GENERATION_KEY = "dashboard:issue-counts:generation"


def _counts_cache_key(issue_id: int, version: str) -> str:
    return f"dashboard:issue-counts:v2:{issue_id}:{version}"


def forget_issue_counts() -> None:
    """Make every cached count stale: for changes that leave no newer ``updated_at``
    behind (deliveries deleted with their subscriber)."""
    shared_cache.set(GENERATION_KEY, uuid.uuid4().hex, 30 * 24 * 3600)


def _latest_change_per_status() -> dict[str, Subquery]:
    """The newest ``updated_at`` among deliveries of each status (an index scan each, on
    (status, updated_at)). Every write to a delivery sets it (claims, dispatch, retry,
    suppression), so cached counts keyed by these stamps cannot outlive a change."""
    return {
        f"changed_{status}": Subquery(
            Delivery.objects.filter(status=status).order_by("-updated_at").values("updated_at")[:1]
        )
        for status in DELIVERY_STATUSES
    }


def recent_issues(*, limit: int = RECENT_ISSUES) -> list[IssueProgress]:
    """The newest issues with their deliveries counted by status: two queries.

    Counting is the costly part (an issue has a delivery per subscriber). Finished
    issues' counts are cached under a version made of the newest change per delivery
    status (read in the same query as the issues), so any delivery change, such as a
    forced send adding a copy to a finished issue, makes them counted again. The newest
    issue and any issue still being sent are always counted.
    """
    changed = _latest_change_per_status()
    issues = list(
        Issue.objects.order_by("-created_at", "-id")
        .annotate(**changed)
        .values("id", "frequency", "period", "created_at", *changed)[:limit]
    )
    if not issues:
        return []
    stamps = "|".join(str(issues[0][name]) for name in changed)
    version = hashlib.sha1(f"{stamps}|{shared_cache.get(GENERATION_KEY)}".encode(), usedforsecurity=False).hexdigest()
    keys = {issue["id"]: _counts_cache_key(issue["id"], version) for issue in issues}
    cached = shared_cache.get_many([keys[issue["id"]] for issue in issues[1:]])
    known = {issue_id: cached[key] for issue_id, key in keys.items() if key in cached}
    counts = list(
        Delivery.objects.filter(issue_id__in=[issue["id"] for issue in issues if issue["id"] not in known])
        .values("issue_id", "status")
        .annotate(n=Count("id"))
        .values("issue_id", "status", "n")
        .order_by()
    )
    counts += [
        {"issue_id": issue_id, "status": status, "n": n}
        for issue_id, by_status in known.items()
        for status, n in by_status.items()
    ]
    rows = _progress_rows(issues, counts)
    shared_cache.set_many(
        {keys[row.issue_id]: row.counts for row in rows if row.issue_id not in known and not row.in_progress},
        FINISHED_ISSUE_CACHE_SECONDS,
    )
    return rows


def current_issue_progress() -> IssueProgress | None:
    """The newest issue still being sent, else the newest issue; two queries.

    Polled by the dashboard's progress bar, so it touches only one issue's rows
    (through the (issue, status) index).
    """
    sending = Delivery.objects.filter(issue=OuterRef("pk"), status__in=PENDING_STATUSES)
    issue = (
        Issue.objects.annotate(in_progress=Exists(sending))
        .order_by("-in_progress", "-created_at", "-id")
        .values("id", "frequency", "period", "created_at")
        .first()
    )
    if issue is None:
        return None
    counts = list(
        Delivery.objects.filter(issue_id=issue["id"])
        .values("issue_id", "status")
        .annotate(n=Count("id"))
        .values("issue_id", "status", "n")
        .order_by()
    )
    return _progress_rows([issue], counts)[0]


@dataclass(frozen=True)
class FailedDelivery:
    delivery_id: int
    subscriber_id: int
    email: str
    issue_id: int
    issue_label: str
    attempts: int
    error: str
    failed_at: datetime


def latest_failures(*, limit: int = LATEST_FAILURES) -> list[FailedDelivery]:
    """The most recent failed deliveries with their error text: one query."""
    rows = (
        Delivery.objects.filter(status=Delivery.Status.FAILED)
        .order_by("-updated_at", "-id")
        .values(
            "id",
            "subscriber_id",
            "subscriber__email",
            "issue_id",
            "issue__frequency",
            "issue__period",
            "attempts",
            "last_error",
            "updated_at",
        )[:limit]
    )
    return [
        FailedDelivery(
            delivery_id=row["id"],
            subscriber_id=row["subscriber_id"],
            email=row["subscriber__email"],
            issue_id=row["issue_id"],
            issue_label=f"{row['issue__frequency']} {row['issue__period']}",
            attempts=row["attempts"],
            error=row["last_error"],
            failed_at=row["updated_at"],
        )
        for row in rows
    ]


# Papers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperImports:
    days: list[date]
    sources: list[str]  # most papers first
    counts: dict[date, dict[str, int]]  # day -> source -> papers first seen that day
    total: int

    def per_source_totals(self) -> dict[str, int]:
        return {source: sum(self.counts[day].get(source, 0) for day in self.days) for source in self.sources}


def papers_per_day(*, now: datetime | None = None, days: int = PAPER_DAYS) -> PaperImports:
    """New papers per day and source over the last ``days`` days: one query."""
    today = timezone.localtime(now or timezone.now()).date()
    day_list = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    rows = (
        Paper.objects.filter(first_seen_at__gte=_local_midnight(day_list[0]))
        .annotate(day=TruncDate("first_seen_at"))
        .values("day", "source")
        .annotate(n=Count("id"))
        .values("day", "source", "n")
        .order_by()
    )
    counts: dict[date, dict[str, int]] = {day: {} for day in day_list}
    totals: dict[str, int] = {}
    for row in rows:
        day, source = _as_date(row["day"]), row["source"] or "unknown"
        if day not in counts:  # first seen in the future (clock skew): not in the chart
            continue
        counts[day][source] = counts[day].get(source, 0) + row["n"]
        totals[source] = totals.get(source, 0) + row["n"]
    sources = sorted(totals, key=lambda source: (-totals[source], source))
    return PaperImports(days=day_list, sources=sources, counts=counts, total=sum(totals.values()))


def last_import_per_source(*, limit: int = MAX_IMPORT_SOURCES) -> list[ImportRun]:
    """The latest ImportRun of each source (a window function): one query."""
    newest_first = Window(RowNumber(), partition_by=F("source"), order_by=[F("started_at").desc(), F("id").desc()])
    return list(ImportRun.objects.annotate(recency=newest_first).filter(recency=1).order_by("source")[:limit])


# Topics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicStats:
    topic_id: int
    query: str
    followers: int  # all subscriptions
    active_followers: int  # subscribers who currently get the digest
    thumbs_up: int
    thumbs_down: int

    @property
    def approval(self) -> float | None:
        votes = self.thumbs_up + self.thumbs_down
        return round(100 * self.thumbs_up / votes) if votes else None


def _count_per_topic(queryset) -> Coalesce:
    """A correlated COUNT of ``queryset`` rows for the outer topic (run for the winners only)."""
    counted = queryset.filter(topic=OuterRef("pk")).order_by().values("topic").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted), 0)


def top_topics(*, limit: int = TOP_TOPICS) -> list[TopicStats]:
    """The most followed topics with follower counts and 👍/👎 feedback: three queries.

    Ranking counts subscriptions per topic id alone (no join over every row); the
    active followers (one hash join), names and votes are read for the winners only.
    """
    ranked = list(
        Subscription.objects.values("topic_id")
        .annotate(followers=Count("id"))
        .order_by("-followers", "topic_id")
        .values_list("topic_id", "followers")[:limit]
    )
    winners = [topic_id for topic_id, _ in ranked]
    active = dict(
        Subscription.objects.filter(topic_id__in=winners, subscriber__status=Subscriber.Status.ACTIVE)
        .values("topic_id")
        .annotate(n=Count("id"))
        .values_list("topic_id", "n")
        .order_by()
    )
    details = Topic.objects.filter(id__in=winners).annotate(
        up=_count_per_topic(Feedback.objects.filter(vote=Feedback.Vote.UP)),
        down=_count_per_topic(Feedback.objects.filter(vote=Feedback.Vote.DOWN)),
    )
    by_id = {row["id"]: row for row in details.values("id", "query", "up", "down")}
    return [
        TopicStats(
            topic_id=topic_id,
            query=by_id[topic_id]["query"],
            followers=followers,
            active_followers=active.get(topic_id, 0),
            thumbs_up=by_id[topic_id]["up"],
            thumbs_down=by_id[topic_id]["down"],
        )
        for topic_id, followers in ranked
    ]


# Everything on the page ---------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    subscribers: SubscriberStats
    issues: list[IssueProgress]
    papers: PaperImports
    imports: list[ImportRun]
    topics: list[TopicStats]
    failures: list[FailedDelivery]
    generated_at: datetime = field(default_factory=timezone.now)

    @property
    def current_issue(self) -> IssueProgress | None:
        """The newest recent issue still being sent, else the newest issue."""
        return next((issue for issue in self.issues if issue.in_progress), self.issues[0] if self.issues else None)


DASHBOARD_QUERIES = 11  # pinned in tests: 3 subscribers + 2 issues + 1 papers + 1 imports + 3 topics + 1 failures


def dashboard(*, now: datetime | None = None) -> Dashboard:
    """All the dashboard's numbers in at most DASHBOARD_QUERIES queries."""
    now = now or timezone.now()
    return Dashboard(
        subscribers=subscriber_stats(now=now),
        issues=recent_issues(),
        papers=papers_per_day(now=now),
        imports=last_import_per_source(),
        topics=top_topics(),
        failures=latest_failures(),
        generated_at=now,
    )


def subscriber_with(email: str) -> Subscriber | None:
    """The subscriber with this address (stored lower-cased: the lookup uses the index)."""
    return Subscriber.objects.filter(email=(email or "").strip().lower()).first()


@dataclass(frozen=True)
class FailedCounts:
    all: int
    active: int  # of them, to subscribers still active (a retry sends only these)


def failed_deliveries(issue) -> FailedCounts:
    counts = Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).aggregate(
        all=Count("id"), active=Count("id", filter=Q(subscriber__status=Subscriber.Status.ACTIVE))
    )
    return FailedCounts(all=counts["all"], active=counts["active"])


def held_deliveries(issue) -> int:
    """What resuming a paused issue sends (``breaker.resume``): its queued and failed rows
    to subscribers still active."""
    return Delivery.objects.filter(
        issue=issue,
        status__in=[*PENDING_STATUSES[:1], Delivery.Status.FAILED],
        subscriber__status=Subscriber.Status.ACTIVE,
    ).count()
