"""The staff dashboard (/admin/dashboard/): one page of aggregates, and action views.

The page reads only through ``digests.selectors``; every action validates a form,
calls one service function, records a LogEntry and redirects. Actions that send
mail show a confirmation step first. All views are wrapped in
``admin.site.admin_view`` (staff only, CSRF-protected, never cached) in
``digests.admin_urls``.

Charts are SVG drawn by the server: this module computes the geometry and
``templates/admin/dashboard_chart.html`` turns it into (escaped) markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from digests import selectors, services
from digests.models import Delivery, Issue
from papers import services as paper_services
from papers.importers import FORMATS
from subscriptions.models import Subscriber

# Charts -------------------------------------------------------------------------------

PALETTE = ["#417690", "#e8a33d", "#5b9a68", "#b05a7a", "#79aec8", "#8a6fb0"]
OTHER_COLOR = "#9aa3ab"
CHART_SOURCES = 5  # the rest of the sources are stacked as "other"


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class Chart:
    """Geometry of one SVG chart in a ``width`` x ``height`` viewBox."""

    title: str
    width: int = 640
    height: int = 220
    left: int = 48
    right: int = 16
    top: int = 12
    bottom: int = 28
    bars: list[Rect] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    y2_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    line_points: str = ""
    line_color: str = ""
    dots: list[Rect] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


def nice_scale(maximum: float, steps: int = 4) -> tuple[float, float]:
    """An axis top and step with round numbers (1, 2, 2.5, 5 x 10^n) covering ``maximum``."""
    if maximum <= 0:
        return 1.0, 1.0
    raw = maximum / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1:
        step = 1.0
    return step * math.ceil(maximum / step), step


def _number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:,.0f}"


def _y_ticks(chart: Chart, top: float, step: float) -> list[Tick]:
    ticks, value = [], 0.0
    while value <= top + step / 2:
        ticks.append(Tick(round(chart.plot_bottom - value / top * chart.plot_height, 1), _number(value)))
        value += step
    return ticks


def growth_chart(growth: list[selectors.WeekPoint]) -> Chart:
    """Weekly sign-ups as bars (right axis), subscribers in total as a line (left axis)."""
    chart = Chart(title="Subscribers over the last 12 weeks", right=44)
    slot = chart.plot_width / max(len(growth), 1)
    total_top, total_step = nice_scale(max((p.total for p in growth), default=0))
    signup_top, signup_step = nice_scale(max((p.signups for p in growth), default=0))
    chart.y_ticks = _y_ticks(chart, total_top, total_step)
    chart.y2_ticks = _y_ticks(chart, signup_top, signup_step)
    points = []
    for index, point in enumerate(growth):
        center = chart.left + slot * (index + 0.5)
        height = point.signups / signup_top * chart.plot_height
        label = f"week of {point.week_start:%d %b}"
        chart.bars.append(
            Rect(
                round(center - slot * 0.3, 1),
                round(chart.plot_bottom - height, 1),
                round(slot * 0.6, 1),
                round(height, 1),
                PALETTE[4],
                f"{label}: {point.signups:,} sign-ups, {point.unsubscribes:,} unsubscribes",
            )
        )
        y = round(chart.plot_bottom - point.total / total_top * chart.plot_height, 1)
        points.append(f"{round(center, 1)},{y}")
        chart.dots.append(Rect(round(center, 1), y, 3, 3, PALETTE[0], f"{label}: {point.total:,} subscribers"))
        if index % 2 == 0 or len(growth) <= 6:
            chart.x_ticks.append(Tick(round(center, 1), f"{point.week_start:%d %b}"))
    chart.line_points = " ".join(points)
    chart.line_color = PALETTE[0]
    chart.legend = [(PALETTE[0], "Subscribers (left axis)"), (PALETTE[4], "New sign-ups per week (right axis)")]
    return chart


def papers_chart(papers: selectors.PaperImports) -> Chart:
    """New papers per day, stacked by source (the biggest five, then "other")."""
    chart = Chart(title="Papers imported per day over the last 30 days", width=1100, height=240)
    shown = papers.sources[:CHART_SOURCES]
    colors = {source: PALETTE[i % len(PALETTE)] for i, source in enumerate(shown)}
    stacks: list[tuple[date, list[tuple[str, int, str]]]] = []
    for day in papers.days:
        per_source = papers.counts[day]
        stack = [(source, per_source.get(source, 0), colors[source]) for source in shown]
        other = sum(n for source, n in per_source.items() if source not in colors)
        if other:
            stack.append(("other", other, OTHER_COLOR))
        stacks.append((day, stack))
    top, step = nice_scale(max((sum(n for _, n, _ in stack) for _, stack in stacks), default=0))
    chart.y_ticks = _y_ticks(chart, top, step)
    slot = chart.plot_width / max(len(stacks), 1)
    for index, (day, stack) in enumerate(stacks):
        x = chart.left + slot * index + slot * 0.15
        y = float(chart.plot_bottom)
        for source, count, color in stack:
            if not count:
                continue
            height = count / top * chart.plot_height
            y -= height
            chart.bars.append(
                Rect(
                    round(x, 1),
                    round(y, 1),
                    round(slot * 0.7, 1),
                    round(height, 1),
                    color,
                    f"{day:%d %b}: {count:,} from {source}",
                )
            )
        if index % 5 == 0 or index == len(stacks) - 1:
            chart.x_ticks.append(Tick(round(chart.left + slot * (index + 0.5), 1), f"{day:%d %b}"))
    totals = papers.per_source_totals()
    chart.legend = [(colors[source], f"{source} · {totals[source]:,}") for source in shown]
    if len(papers.sources) > len(shown):
        chart.legend.append((OTHER_COLOR, f"other · {sum(totals[s] for s in papers.sources[len(shown) :]):,}"))
    return chart


# The page -----------------------------------------------------------------------------


def _context(request, **extra) -> dict:
    return {**admin.site.each_context(request), "is_nav_sidebar_enabled": False, **extra}


@require_GET
def dashboard_view(request):
    data = selectors.dashboard()
    return TemplateResponse(
        request,
        "admin/dashboard.html",
        _context(
            request,
            title="Dashboard",
            data=data,
            current=data.current_issue,
            growth_chart=growth_chart(data.subscribers.growth),
            papers_chart=papers_chart(data.papers),
            # Several forms share field names on one page: each gets its own element ids.
            forms={
                "preview": PreviewForm(auto_id="preview-%s"),
                "send_test": SendTestForm(auto_id="send-test-%s"),
                "upload": UploadImportForm(auto_id="upload-%s"),
                "dispatch": DispatchForm(auto_id="dispatch-%s"),
                "suppress": SuppressForm(auto_id="suppress-%s"),
                "restore": AddressForm(auto_id="restore-%s"),
            },
            paper_sources=settings.PAPER_SOURCES,
        ),
    )


@require_GET
def progress_view(request):
    """JSON for the self-refreshing progress bar: the issue being sent, else the newest."""
    progress = selectors.current_issue_progress()
    return JsonResponse({"issue": progress.as_json() if progress else None})


# Forms --------------------------------------------------------------------------------


class SubscriberField(forms.EmailField):
    """A subscriber picked by email address (a select box would not scale to 100k)."""

    def clean(self, value):
        email = super().clean(value)
        subscriber = Subscriber.objects.filter(email=email.lower()).first()  # stored lower-cased: uses the index
        if subscriber is None:
            raise forms.ValidationError("No subscriber has this address.")
        return subscriber


class PreviewForm(forms.Form):
    subscriber = SubscriberField(label="Subscriber's email")


class SendTestForm(forms.Form):
    subscriber = SubscriberField(label="Digest of subscriber", help_text="Whose next digest to send.")
    to_address = forms.EmailField(label="Send to", help_text="The test copy goes only to this address.")


IMPORT_FORMATS = [("auto", "Detect from content"), *((name, name) for name in FORMATS)]


class UploadImportForm(forms.Form):
    file = forms.FileField(label="File")
    fmt = forms.ChoiceField(label="Format", choices=IMPORT_FORMATS, initial="auto")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.PAPER_MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {settings.PAPER_MAX_BYTES:,} bytes.")
        return upload


class DispatchForm(forms.Form):
    frequency = forms.ChoiceField(
        label="Frequency",
        choices=[("", "Weekly and daily"), *Issue.Frequency.choices],
        required=False,
    )
    force = forms.BooleanField(
        label="Also subscribers not due yet", required=False, help_text="Send now even outside their chosen hour."
    )


class AddressForm(forms.Form):
    email = forms.EmailField(label="Address")


class SuppressForm(AddressForm):
    reason = forms.CharField(label="Reason", max_length=200, initial="Suppressed by an operator")


# Actions ------------------------------------------------------------------------------


def _record(request, message: str, obj=None) -> None:
    """Write the action to the admin log (shown under "Recent actions" and in object history)."""
    if obj is not None:
        LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=[obj], action_flag=CHANGE, change_message=message, single_object=True
        )
    else:
        LogEntry.objects.create(
            user_id=request.user.pk, action_flag=CHANGE, object_repr="Dashboard", change_message=message
        )


def _describe_fetch(report) -> tuple[str, list[str]]:
    """A summary of papers.services.FetchReport, and one line per failed source."""
    created = sum(result.created for result in report.results.values())
    updated = sum(result.updated for result in report.results.values())
    summary = f"{len(report.results)} source(s) imported: {created} new, {updated} updated papers"
    if report.failed:
        summary += f"; {len(report.failed)} failed"
    if report.postponed:
        summary += f"; {len(report.postponed)} postponed"
    return summary, [f"{source}: {reason}" for source, reason in report.failed.items()]


def _describe_dispatch(result) -> str:
    """A summary of digests.services.DispatchResult."""
    issues = ", ".join(result.issues) or "no issue due"
    return f"{issues}; {result.created} new deliveries, {result.rescued} resumed, {result.batches} batches queued"


def _form_page(request, form, *, title, action_url, intro="", submit="Continue", multipart=False):
    return TemplateResponse(
        request,
        "admin/dashboard_action.html",
        _context(
            request,
            title=title,
            form=form,
            action_url=action_url,
            intro=intro,
            submit=submit,
            multipart=multipart,
        ),
        status=400 if form.is_bound else 200,
    )


def _confirm_page(request, form, *, title, action_url, summary):
    """The confirmation step before an action that sends mail; resubmits the same data."""
    return TemplateResponse(
        request,
        "admin/dashboard_confirm.html",
        _context(request, title=title, form=form, action_url=action_url, summary=summary),
    )


def _confirmed(request) -> bool:
    return request.POST.get("confirmed") == "yes"


def _back():
    return redirect("dashboard:index")


@require_http_methods(["GET", "POST"])
def preview_view(request):
    """The next digest of one subscriber, rendered exactly as they would get it; sends nothing."""
    url = reverse("dashboard:preview")
    if request.method == "GET":
        form = PreviewForm(initial={"subscriber": request.GET.get("subscriber", "")})
        return _form_page(request, form, title="Preview a digest", action_url=url, submit="Preview")
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, title="Preview a digest", action_url=url, submit="Preview")
    return render_preview(request, form.cleaned_data["subscriber"])


def render_preview(request, subscriber):
    """The preview page for one subscriber, logged; also usable as a Subscriber admin action's response."""
    rendered = services.preview_digest(subscriber)
    _record(request, "Previewed the next digest from the dashboard.", subscriber)
    return TemplateResponse(
        request,
        "admin/dashboard_preview.html",
        _context(request, title=f"Next digest of {subscriber.email}", subscriber=subscriber, rendered=rendered),
    )


@require_http_methods(["GET", "POST"])
def send_test_view(request):
    url = reverse("dashboard:send_test")
    title = "Send a test digest"
    if request.method == "GET":
        form = SendTestForm(initial={"subscriber": request.GET.get("subscriber", "")})
        return _form_page(request, form, title=title, action_url=url)
    form = SendTestForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, title=title, action_url=url)
    subscriber, to_address = form.cleaned_data["subscriber"], form.cleaned_data["to_address"]
    if not _confirmed(request):
        summary = f"Send the next digest of {subscriber.email} to {to_address} now?"
        return _confirm_page(request, form, title=title, action_url=url, summary=summary)
    services.send_test_digest(subscriber=subscriber, to_address=to_address)
    _record(request, f"Sent a test digest of this subscriber to {to_address}.", subscriber)
    messages.success(request, f"A test digest of {subscriber.email} was sent to {to_address}.")
    return _back()


@require_POST
def import_sources_view(request):
    """Fetch every configured source now (no mail: no confirmation step)."""
    summary, failures = _describe_fetch(paper_services.fetch_sources())
    _record(request, f"Imported papers from the configured sources: {summary}.")
    messages.success(request, f"Imported papers from the configured sources: {summary}.")
    for failure in failures:
        messages.error(request, f"Import failed: {failure}")
    return _back()


@require_http_methods(["GET", "POST"])
def import_upload_view(request):
    url = reverse("dashboard:import_upload")
    title = "Import papers from a file"
    if request.method == "GET":
        return _form_page(request, UploadImportForm(), title=title, action_url=url, submit="Import", multipart=True)
    form = UploadImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _form_page(request, form, title=title, action_url=url, submit="Import", multipart=True)
    upload = form.cleaned_data["file"]
    try:
        result = paper_services.import_bytes(
            upload.read(), fmt=form.cleaned_data["fmt"], source_name=f"upload:{upload.name}"
        )
    except paper_services.ImportFailed as exc:  # nothing was written; the ImportRun keeps the error too
        form.add_error("file", f"Import failed: {exc.reason}")
        return _form_page(request, form, title=title, action_url=url, submit="Import", multipart=True)
    _record(request, f"Imported papers from the uploaded file {upload.name}: {result}.")
    messages.success(request, f"Imported {upload.name}: {result}.")
    return _back()


@require_http_methods(["GET", "POST"])
def dispatch_due_view(request):
    url = reverse("dashboard:dispatch_due")
    title = "Send the due digests now"
    if request.method == "GET":
        return _form_page(request, DispatchForm(), title=title, action_url=url)
    form = DispatchForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, title=title, action_url=url)
    frequency = form.cleaned_data["frequency"] or None
    force = form.cleaned_data["force"]
    which = f"{frequency} digests" if frequency else "weekly and daily digests"
    scope = "to every active subscriber, due or not" if force else "to the subscribers who are due"
    if not _confirmed(request):
        return _confirm_page(request, form, title=title, action_url=url, summary=f"Send the {which} now, {scope}?")
    summary = _describe_dispatch(services.dispatch_due(frequency=frequency, force=force))
    _record(request, f"Sent the due {which} {scope}: {summary}.")
    messages.success(request, f"Sending the {which}: {summary}.")
    return _back()


@require_http_methods(["GET", "POST"])
def retry_failed_view(request, issue_id: int):
    issue = get_object_or_404(Issue, pk=issue_id)
    url = reverse("dashboard:retry_failed", args=[issue.pk])
    failed = Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).aggregate(
        all=Count("id"), active=Count("id", filter=Q(subscriber__status=Subscriber.Status.ACTIVE))
    )
    title = f"Retry the failed deliveries of {issue}"
    form = forms.Form(request.POST or None)
    if request.method == "GET" or not _confirmed(request):
        summary = f"Send the {failed['active']:,} failed deliveries of {issue} to active subscribers again now?"
        if failed["all"] > failed["active"]:
            summary += f" ({failed['all'] - failed['active']:,} more went to addresses no longer active: not retried.)"
        return _confirm_page(request, form, title=title, action_url=url, summary=summary)
    retried = services.retry_failed(issue)
    selectors.forget_issue_counts(issue.pk)
    _record(request, f"Retried {retried} failed deliveries from the dashboard.", issue)
    messages.success(request, f"{retried:,} failed deliveries of {issue} are being sent again.")
    return _back()


@require_http_methods(["GET", "POST"])
def suppress_view(request):
    """Stop all mail to an address (no mail is sent: no confirmation step)."""
    url = reverse("dashboard:suppress")
    title = "Suppress an address"
    if request.method == "GET":
        form = SuppressForm(initial={"email": request.GET.get("email", "")})
        return _form_page(request, form, title=title, action_url=url, submit="Suppress")
    form = SuppressForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, title=title, action_url=url, submit="Suppress")
    email, reason = form.cleaned_data["email"], form.cleaned_data["reason"]
    if not services.suppress_address(email, reason=reason):
        form.add_error("email", "No subscriber who still gets mail has this address: nothing changed.")
        return _form_page(request, form, title=title, action_url=url, submit="Suppress")
    subscriber = Subscriber.objects.filter(email=email.lower()).first()
    _record(request, f"Suppressed {email}: {reason}", subscriber)
    messages.success(request, f"{email} is suppressed: no more mail goes to it.")
    return _back()


@require_http_methods(["GET", "POST"])
def restore_view(request):
    url = reverse("dashboard:restore")
    title = "Restore a suppressed address"
    if request.method == "GET":
        form = AddressForm(initial={"email": request.GET.get("email", "")})
        return _form_page(request, form, title=title, action_url=url, submit="Restore")
    form = AddressForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, title=title, action_url=url, submit="Restore")
    email = form.cleaned_data["email"]
    if not services.restore_address(email):
        form.add_error("email", "No suppressed subscriber has this address: nothing changed.")
        return _form_page(request, form, title=title, action_url=url, submit="Restore")
    subscriber = Subscriber.objects.filter(email=email.lower()).first()
    _record(request, f"Restored {email} after suppression.", subscriber)
    messages.success(request, f"{email} is restored.")
    return _back()
