"""An issue's send record: who it was due to, who got it, who did not and why.

Reads only (the dashboard's history page and its CSV). Counts are one aggregate over
the issue's rows (the (issue, status) index); a page of rows is two queries (count and
page); the CSV reads keyset pages of ``EXPORT_PAGE`` rows, one query each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Count, Q

from digests.models import Delivery

Status = Delivery.Status
EXPORT_PAGE = 2000
PENDING = [Status.QUEUED, Status.SENDING]

# What each figure of the history counts, in the order shown. "due" is every copy made.
CATEGORIES: dict[str, tuple[str, Q]] = {
    "due": ("due: a copy was made for them", Q()),
    "sent": ("sent: accepted by the mail server", Q(status=Status.SENT)),
    "deferred": ("deferred: tried, to be tried again", Q(status__in=PENDING, attempts__gt=0)),
    "waiting": ("waiting: not tried yet", Q(status__in=PENDING, attempts=0)),
    "failed": ("failed: given up after errors", Q(status=Status.FAILED)),
    "skipped": ("skipped: nothing to send them, or no longer subscribed", Q(status=Status.SKIPPED)),
    "suppressed": ("suppressed: the address gets no mail", Q(status=Status.SUPPRESSED)),
}
RECORD_COLUMNS = ["email", "outcome", "status", "attempts", "sent_at", "last_change", "why"]


def history(issue_id: int) -> dict[str, int]:
    """The issue's copies counted in every category: one query."""
    return Delivery.objects.filter(issue_id=issue_id).aggregate(
        **{name: Count("id", filter=q) for name, (_, q) in CATEGORIES.items()}
    )


def _rows(issue_id: int, category: str, search: str):
    rows = Delivery.objects.filter(CATEGORIES.get(category, CATEGORIES["due"])[1], issue_id=issue_id)
    if search.strip():
        rows = rows.filter(subscriber__email__icontains=search.strip().lower())
    return rows.values("id", "subscriber__email", "status", "attempts", "sent_at", "updated_at", "last_error")


@dataclass(frozen=True)
class RecordRow:
    email: str
    outcome: str
    status: str
    attempts: int
    sent_at: object
    last_change: object
    why: str


def _outcome(row: dict) -> str:
    if row["status"] in PENDING:
        return "deferred" if row["attempts"] else "waiting"
    return row["status"]


def _why(row: dict) -> str:
    if row["status"] == Status.SENT:
        return row["last_error"] or "accepted by the mail server"
    if row["status"] in PENDING and not row["attempts"]:
        return "waiting for a worker"
    return row["last_error"] or "(no reason recorded)"


def _record(row: dict) -> RecordRow:
    return RecordRow(
        email=row["subscriber__email"],
        outcome=_outcome(row),
        status=row["status"],
        attempts=row["attempts"],
        sent_at=row["sent_at"],
        last_change=row["updated_at"],
        why=_why(row),
    )


def record_page(issue_id: int, *, category: str = "due", search: str = "", offset: int = 0, limit: int = 100):
    """(rows, total) of one page, by address: two queries."""
    rows = _rows(issue_id, category, search)
    total = rows.count()
    page = rows.order_by("subscriber__email", "id")[offset : offset + limit]
    return [_record(row) for row in page], total


def record_rows(issue_id: int, *, category: str = "due", search: str = "") -> Iterator[list[str]]:
    """The header, then every matching row (in delivery order) for a CSV."""
    yield RECORD_COLUMNS
    rows = _rows(issue_id, category, search).order_by("id")
    after = 0
    while True:
        chunk = list(rows.filter(id__gt=after)[:EXPORT_PAGE])
        if not chunk:
            return
        for row in chunk:
            record = _record(row)
            yield [
                record.email,
                record.outcome,
                record.status,
                str(record.attempts),
                record.sent_at.isoformat() if record.sent_at else "",
                record.last_change.isoformat() if record.last_change else "",
                record.why,
            ]
        after = chunk[-1]["id"]
