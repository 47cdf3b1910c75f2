"""Subscribers from a CSV file (an operator moving a list over): all rows or none.

Columns (a header row names them; order free): ``email`` (or ``address``), ``topics``
(several separated by ``;``), and optionally ``frequency`` (weekly, daily), ``timezone``
(an IANA name) and ``consent`` (yes/no). The file is read and checked whole before
anything is written: any bad row refuses the import with every problem named by its
line. Then, in one transaction:

- a new address whose row says ``consent=yes`` is imported as confirmed, but only when
  the operator confirms that consent on the import form; every other new address is
  stored pending and gets the usual confirmation email (after the commit);
- a known address is left exactly as it is, and said so: a suppressed address stays
  suppressed, someone who unsubscribed is not signed up again behind their back, and an
  active or pending subscriber keeps their own preferences.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone as dj_timezone

from subscriptions import services, tasks
from subscriptions.models import Subscriber, Subscription, Topic

MAX_BYTES = 1024 * 1024  # about 15,000 rows; its text goes through the confirmation page once more
MAX_ROWS = 20_000
TOPIC_SEPARATOR = ";"
COLUMNS = ("email", "topics", "frequency", "timezone", "consent")
ALIASES = {"address": "email", "time zone": "timezone", "time_zone": "timezone", "topic": "topics"}
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0", ""}


class ImportRefused(ValueError):
    """The file cannot be imported; ``problems`` are (line, message), line 0 for the file."""

    def __init__(self, problems: list[tuple[int, str]]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems

    def messages(self, limit: int = 50) -> list[str]:
        shown = [f"Line {line}: {message}" if line else message for line, message in self.problems[:limit]]
        if len(self.problems) > limit:
            shown.append(f"… and {len(self.problems) - limit:,} more.")
        return shown


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    topics: list[str]
    frequency: str
    timezone: str
    consent: bool


@dataclass
class ImportPlan:
    """What an import does (or did): counted for the operator's confirmation."""

    confirmed: list[Row] = field(default_factory=list)  # new, consent confirmed: active now
    invited: list[Row] = field(default_factory=list)  # new: pending, confirmation email
    left_alone: list[tuple[Row, str]] = field(default_factory=list)  # known address, and why

    @property
    def touched(self) -> int:
        return len(self.confirmed) + len(self.invited)

    def summary(self) -> str:
        parts = [
            f"{len(self.confirmed):,} imported as confirmed",
            f"{len(self.invited):,} sent a confirmation email",
        ]
        if self.left_alone:
            reasons: dict[str, int] = {}
            for _, why in self.left_alone:
                reasons[why] = reasons.get(why, 0) + 1
            parts.append(
                f"{len(self.left_alone):,} left as they are ("
                + ", ".join(f"{n:,} {why}" for why, n in sorted(reasons.items()))
                + ")"
            )
        return "; ".join(parts)


def decode(data: bytes | str) -> str:
    """The file as text (UTF-8, with or without a BOM); refused when too large or not UTF-8."""
    if isinstance(data, str):
        return data
    if len(data) > MAX_BYTES:
        raise ImportRefused([(0, f"The file is larger than {MAX_BYTES:,} bytes: split it.")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRefused([(line, "not UTF-8 text: save the file as CSV UTF-8.")]) from exc


def _header(names: list[str] | None) -> dict[str, int]:
    if not names:
        raise ImportRefused([(1, "the file is empty: the first line must name the columns (email, topics, …).")])
    if len(names) == 1 and ";" in names[0]:
        raise ImportRefused([(1, "the columns are separated by semicolons: save the file as CSV with commas.")])
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        key = ALIASES.get(name.strip().lower(), name.strip().lower())
        if key not in COLUMNS:
            raise ImportRefused([(1, f"unknown column {name.strip()!r}; known: {', '.join(COLUMNS)}.")])
        if key in columns:
            raise ImportRefused([(1, f"the column {key!r} appears twice.")])
        columns[key] = index
    missing = [name for name in ("email", "topics") if name not in columns]
    if missing:
        raise ImportRefused([(1, f"missing column {' and '.join(repr(m) for m in missing)}.")])
    return columns


def _row(line: int, cells: dict[str, str]) -> Row:
    """One data row, checked like a sign-up; raises ValueError with the reason."""
    email = cells.get("email", "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValueError(f"{email or '(empty)'!r} is not an email address.") from None
    topics = services.clean_topics(cells.get("topics", "").split(TOPIC_SEPARATOR))
    frequency = cells.get("frequency", "").strip().lower() or Subscriber.Frequency.WEEKLY
    tz_name = cells.get("timezone", "").strip() or "UTC"
    consent = cells.get("consent", "").strip().lower()
    if consent not in YES | NO:
        raise ValueError(f"consent must be yes or no, not {consent!r}.")
    try:
        services.validate_preferences(
            topics=topics, authors=[], frequency=frequency, weekday=0, timezone=tz_name, send_hour=0
        )
    except ValueError as exc:
        raise ValueError(f"{email}: {str(exc).rstrip('.')}.") from None
    return Row(line, email, topics, frequency, tz_name, consent in YES)


def read_rows(data: bytes | str) -> list[Row]:
    """Every row of the file, checked; raises ImportRefused naming each bad line."""
    reader = csv.reader(io.StringIO(decode(data), newline=""))
    try:
        columns = _header(next(reader, None))
        rows, problems, seen = [], [], {}
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(columns):
                problems.append((line, f"{len(cells)} cells, but the header names {len(columns)} columns."))
                continue
            try:
                row = _row(line, {name: cells[i] if i < len(cells) else "" for name, i in columns.items()})
            except ValueError as exc:
                problems.append((line, str(exc)))
                continue
            if row.email in seen:
                problems.append((line, f"{row.email} is also on line {seen[row.email]}."))
                continue
            seen[row.email] = line
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise ImportRefused([(line, f"more than {MAX_ROWS:,} rows: split the file.")])
    except csv.Error as exc:
        raise ImportRefused([(reader.line_num, f"not a readable CSV line ({exc}).")]) from exc
    if problems:
        raise ImportRefused(problems)
    if not rows:
        raise ImportRefused([(0, "The file has no subscriber rows.")])
    return rows


LEFT_ALONE = {
    Subscriber.Status.BOUNCED: "suppressed",
    Subscriber.Status.UNSUBSCRIBED: "unsubscribed",
    Subscriber.Status.ACTIVE: "already subscribed",
    Subscriber.Status.PAUSED: "already subscribed",
    Subscriber.Status.PENDING: "already waiting for their confirmation",
}


def plan_import(data: bytes | str, *, consent_confirmed: bool) -> ImportPlan:
    """What ``import_subscribers`` would do with this file; writes nothing."""
    rows = read_rows(data)
    known = dict(Subscriber.objects.filter(email__in=[row.email for row in rows]).values_list("email", "status"))
    plan = ImportPlan()
    for row in rows:
        if row.email in known:
            plan.left_alone.append((row, LEFT_ALONE[known[row.email]]))
        elif row.consent and consent_confirmed:
            plan.confirmed.append(row)
        else:
            plan.invited.append(row)
    return plan


def import_subscribers(data: bytes | str, *, consent_confirmed: bool) -> ImportPlan:
    """Import the file's new addresses (see the module's docstring); all or nothing."""
    try:
        with transaction.atomic():
            plan = plan_import(data, consent_confirmed=consent_confirmed)
            _create(plan)
    except IntegrityError as exc:  # someone signed up with one of the addresses meanwhile
        raise ImportRefused(
            [(0, "An address in the file signed up meanwhile: nothing was imported; try again.")]
        ) from exc
    return plan


def _create(plan: ImportPlan) -> None:
    now = dj_timezone.now()
    new = [(row, True) for row in plan.confirmed] + [(row, False) for row in plan.invited]
    if not new:
        return
    Subscriber.objects.bulk_create(
        [
            Subscriber(
                email=row.email,
                frequency=row.frequency,
                timezone=row.timezone,
                send_hour=services.DEFAULT_SEND_HOUR,
                status=Subscriber.Status.ACTIVE if confirmed else Subscriber.Status.PENDING,
                confirmed_at=now if confirmed else None,
                confirmation_sent_at=None if confirmed else now,
                created_at=now,
            )
            for row, confirmed in new
        ],
        batch_size=1000,
    )
    ids = dict(Subscriber.objects.filter(email__in=[row.email for row, _ in new]).values_list("email", "id"))
    queries = list(dict.fromkeys(query for row, _ in new for query in row.topics))
    existing = set(Topic.objects.filter(query__in=queries).values_list("query", flat=True))
    Topic.objects.bulk_create([Topic(query=q) for q in queries if q not in existing], ignore_conflicts=True)
    topic_ids = dict(Topic.objects.filter(query__in=queries).values_list("query", "id"))
    Subscription.objects.bulk_create(
        [Subscription(subscriber_id=ids[row.email], topic_id=topic_ids[q]) for row, _ in new for q in row.topics],
        batch_size=2000,
    )
    missing = [q for q in queries if q not in existing]
    if missing:
        services._embed_after_commit(missing)
    for row in plan.invited:
        services._after_commit(tasks.send_confirmation_email, ids[row.email])
