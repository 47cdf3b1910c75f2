"""Days, ISO weeks and months of the site, as [start, end) ranges of aware datetimes in the
site's time zone (``TIME_ZONE``). A paper belongs to the day it was announced, or first
seen when its source gave no date (``papers.models.listing_day``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from papers.models import Paper

DAILY, WEEKLY, MONTHLY = "day", "week", "month"
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    kind: str
    first_day: date
    days: int

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    def days_list(self) -> list[date]:
        return [self.first_day + timedelta(days=n) for n in range(self.days)]

    @property
    def start(self) -> datetime:
        return midnight(self.first_day)

    @property
    def end(self) -> datetime:
        return midnight(self.first_day + timedelta(days=self.days))

    @property
    def slug(self) -> str:
        if self.kind == WEEKLY:
            year, week, _ = self.first_day.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == MONTHLY:
            return f"{self.first_day:%Y-%m}"
        return self.first_day.isoformat()

    @property
    def url(self) -> str:
        from pages import links

        return links.url(f"pages:{self.kind}", self.slug)

    def tabs(self) -> list[tuple[str, Period]]:
        """The Daily, Weekly and Monthly views around this period (a week or month's day is
        its last day, or today while it is going on)."""
        day = self.first_day if self.kind == DAILY else min(self.last_day, timezone.localdate())
        return [("Daily", day_period(day)), ("Weekly", week_period(day)), ("Monthly", month_period(day))]

    @property
    def title(self) -> str:
        if self.kind == WEEKLY:
            year, week, _ = self.first_day.isocalendar()
            return f"Week {week}, {year} ({span(self.first_day, self.last_day)})"
        if self.kind == MONTHLY:
            return f"{self.first_day:%B %Y}"
        return long_date(self.first_day)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def listed_on(paper) -> date:
    """The day ``paper`` is listed under (``papers.models.listing_day``, in Python)."""
    return Paper.listing_date(paper)  # a Paper, or any row with its two dates


def long_date(day: date) -> str:
    """'Friday, 13 March 2026'."""
    return f"{day:%A}, {day.day} {day:%B %Y}"


def span(first: date, last: date) -> str:
    if first.month == last.month:
        return f"{first.day}–{last.day} {last:%B}"
    return f"{first.day} {first:%B} – {last.day} {last:%B}"


def day_period(day: date) -> Period:
    return Period(DAILY, day, 1)


def week_period(day: date) -> Period:
    return Period(WEEKLY, day - timedelta(days=day.weekday()), 7)


def month_period(day: date) -> Period:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(MONTHLY, first, (following - first).days)


def period_of(kind: str, day: date) -> Period:
    return {DAILY: day_period, WEEKLY: week_period, MONTHLY: month_period}[kind](day)


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def parse_week(text: str) -> date | None:
    """'2026-W11' -> the Monday of that ISO week (None for a week the year does not have)."""
    match = _WEEK.match(text)
    try:
        return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1) if match else None
    except ValueError:
        return None


def parse_month(text: str) -> date | None:
    match = _MONTH.match(text)
    try:
        return date(int(match.group(1)), int(match.group(2)), 1) if match else None
    except ValueError:
        return None
