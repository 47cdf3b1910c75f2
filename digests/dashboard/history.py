"""An issue's history on the dashboard: its copies counted by outcome; a click on a
number lists those rows (searchable by address, by pages), and the same rows download
as CSV. Listing or exporting addresses needs ``digests.export_subscribers``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from digests.dashboard import records
from digests.dashboard.actions import page_context, record, require
from digests.dashboard.people import csv_download
from digests.models import Issue

PAGE_SIZE = 100
EXPORT_PERMISSION = "digests.export_subscribers"


def _page_number(value: str) -> int:
    return int(value) if value.isdigit() and 0 < int(value) < 1_000_000 else 1


def _filters(request) -> tuple[str, str]:
    show = request.GET.get("show", "")
    return (show if show in records.CATEGORIES else ""), request.GET.get("q", "").strip()[:254]


@require_GET
def issue_history_view(request, issue_id: int):
    issue = get_object_or_404(Issue, pk=issue_id)
    show, search = _filters(request)
    listing = None
    if show or search:
        require(request, EXPORT_PERMISSION)
        number = _page_number(request.GET.get("page", ""))
        rows, total = records.record_page(
            issue.id, category=show or "due", search=search, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
        query = {"show": show or "due", **({"q": search} if search else {})}
        listing = {
            "rows": rows,
            "total": total,
            "first": (number - 1) * PAGE_SIZE + 1,
            "last": (number - 1) * PAGE_SIZE + len(rows),
            "previous": f"?{urlencode({**query, 'page': number - 1})}" if number > 1 else "",
            "next": f"?{urlencode({**query, 'page': number + 1})}" if number * PAGE_SIZE < total else "",
            "csv": f"?{urlencode(query)}",
            "label": records.CATEGORIES[show or "due"][0],
        }
    counts = records.history(issue.id)
    return TemplateResponse(
        request,
        "admin/dashboard_issue.html",
        page_context(
            request,
            title=f"History of {issue}",
            issue=issue,
            figures=[(name, label, counts[name]) for name, (label, _) in records.CATEGORIES.items()],
            show=show,
            search=search,
            listing=listing,
        ),
    )


@require_GET
def issue_record_csv_view(request, issue_id: int):
    """The listed rows (all of them, not one page) as CSV; the download is logged."""
    require(request, EXPORT_PERMISSION)
    issue = get_object_or_404(Issue, pk=issue_id)
    show, search = _filters(request)
    show = show or "due"
    record(request, f"Exported the send record ({show}{', ' + search if search else ''}) as CSV.", issue)
    return csv_download(
        records.record_rows(issue.id, category=show, search=search),
        f"send-record-{issue.frequency}-{issue.period}-{show}.csv",
    )
