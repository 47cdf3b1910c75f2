"""When a subscriber's digest is due, computed in their own time zone.

A period is the subscriber's local ISO week (weekly, ``2026-W48``) or local date
(daily, ``2026-11-26``). Each period has one scheduled moment: the chosen weekday
and hour (weekly) or the hour on a weekday (daily; none on Saturday and Sunday).
Once that moment has passed the subscriber stays due for the rest of the period,
so a dispatcher tick that was missed is caught up by the next one; the unique
(subscriber, issue) row keeps it to one copy per period.

Comparisons are made in UTC: Python compares two datetimes with the same tzinfo by
wall-clock time and ignores ``fold``, which is wrong around DST changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

logger = logging.getLogger(__name__)

UTC = dt.UTC
WEEKLY = "weekly"
DAILY = "daily"
WELCOME = "welcome"  # the issue sent right after confirming: the past week's strong matches


@dataclass(frozen=True)
class Schedule:
    frequency: str
    weekday: int
    send_hour: int
    timezone: str

    @classmethod
    def of(cls, subscriber) -> Schedule:
        return cls(subscriber.frequency, subscriber.weekday, subscriber.send_hour, subscriber.timezone)


@dataclass(frozen=True)
class Slot:
    """One period of one schedule: its name and the UTC moment it is due (None: no send)."""

    frequency: str
    period: str
    due_at: dt.datetime | None

    def is_due(self, now: dt.datetime) -> bool:
        return self.due_at is not None and now >= self.due_at


def zone(name: str) -> ZoneInfo:
    """The subscriber's zone; an unknown name (validated at signup, so rare) counts as UTC."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone, using UTC", extra={"timezone": name})
        return ZoneInfo("UTC")


def period_of(frequency: str, local_day: dt.date) -> str:
    if frequency == WEEKLY:
        year, week, _ = local_day.isocalendar()
        return f"{year}-W{week:02d}"
    return local_day.isoformat()


def _due_at(schedule: Schedule, local_day: dt.date, tz: ZoneInfo) -> dt.datetime | None:
    """The UTC moment of the send in the period holding ``local_day``."""
    if schedule.frequency == WEEKLY:
        day = local_day - dt.timedelta(days=local_day.weekday()) + dt.timedelta(days=schedule.weekday % 7)
    else:
        if local_day.weekday() >= 5:
            return None
        day = local_day
    # A wall time skipped by a DST change (02:30 on the spring-forward night) resolves
    # with the offset before the change, i.e. one hour later on the clock; a repeated one
    # (fall-back night) resolves to its first occurrence (fold=0).
    local = dt.datetime.combine(day, dt.time(hour=schedule.send_hour % 24), tzinfo=tz)
    return local.astimezone(UTC)


def current_slot(schedule: Schedule, now: dt.datetime) -> Slot:
    """The period the subscriber is in at ``now`` (their local time) and when it is due."""
    tz = zone(schedule.timezone)
    local_day = now.astimezone(tz).date()
    return Slot(schedule.frequency, period_of(schedule.frequency, local_day), _due_at(schedule, local_day, tz))


def next_slot(schedule: Schedule, now: dt.datetime) -> Slot:
    """The next period whose send is still ahead of ``now`` (or the current one if not yet due)."""
    tz = zone(schedule.timezone)
    local_day = now.astimezone(tz).date()
    step = dt.timedelta(days=7 if schedule.frequency == WEEKLY else 1)
    for _ in range(10):
        due_at = _due_at(schedule, local_day, tz)
        if due_at is not None and due_at > now:
            return Slot(schedule.frequency, period_of(schedule.frequency, local_day), due_at)
        local_day += step
    raise AssertionError("a schedule always has a next send within ten periods")


def period_start(frequency: str, period: str) -> dt.date:
    if frequency == WEEKLY:
        year, week = period.split("-W")
        return dt.date.fromisocalendar(int(year), int(week), 1)
    return dt.date.fromisoformat(period)


def period_label(frequency: str, period: str) -> str:
    """How a reader says the period: "week of 23 November 2026" / "Thursday 26 November 2026"."""
    try:
        start = period_start(frequency, period)
    except ValueError:
        return period
    if frequency == WEEKLY:
        return f"week of {start.day} {start:%B %Y}"
    return f"{start:%A} {start.day} {start:%B %Y}"


def lookback(frequency: str, period: str) -> dt.timedelta:
    """How far back a digest looks for papers: a week (and for the welcome issue); a day,
    or the weekend too on Monday."""
    if frequency in (WEEKLY, WELCOME):
        return dt.timedelta(days=7)
    try:
        monday = period_start(frequency, period).weekday() == 0
    except ValueError:
        monday = False
    return dt.timedelta(days=3 if monday else 1)


def next_issue_text(schedule: Schedule, now: dt.datetime) -> str:
    """The next regular issue as a date in the reader's zone: "Monday 14 December, around
    08:00 Europe/Berlin" (with the year when it is not this year's)."""
    local = next_slot(schedule, now).due_at.astimezone(zone(schedule.timezone))
    year = f" {local.year}" if local.year != now.astimezone(zone(schedule.timezone)).year else ""
    return f"{local:%A} {local.day} {local:%B}{year}, around {local:%H}:00 {schedule.timezone}"
