"""The staff dashboard (/admin/dashboard/): one page of aggregates, and action views.

The page reads only through ``selectors``. Every action goes the same way
(``run_action``): a form, a confirmation step for those that send mail, one service
call, a LogEntry, a message and back to the dashboard. All views are wrapped in
``admin.site.admin_view`` (staff only, CSRF-protected, never cached) in
``digests.admin_urls``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from digests import breaker, content, dispatch, tasks
from digests.dashboard import alerts, selectors
from digests.dashboard.charts import growth_chart, papers_chart
from digests.dashboard.forms import (
    AddressForm,
    DispatchForm,
    PreviewForm,
    SendTestForm,
    SuppressForm,
    UploadImportForm,
)
from digests.models import Issue
from papers import services as paper_services
from subscriptions import suppression


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
            delivery_alerts=alerts.delivery_alerts(),
        ),
    )


@require_GET
def progress_view(request):
    """JSON for the self-refreshing progress bar: the issue being sent, else the newest."""
    progress = selectors.current_issue_progress()
    return JsonResponse({"issue": progress.as_json() if progress else None})


# One way for every action ------------------------------------------------------------


@dataclass
class Done:
    """What an action did: shown to the operator, and written to the admin log about
    ``about`` (None: the dashboard itself)."""

    message: str
    log: str = ""
    about: object = None
    errors: list[str] = field(default_factory=list)


class Refused(Exception):
    """The service changed nothing: the form comes back with this error on ``field``."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field_name = field_name
        self.message = message


@dataclass(frozen=True)
class Action:
    title: str | Callable[..., str]  # or (**url_kwargs) -> title
    url_name: str
    form_class: type[forms.Form]
    perform: Callable[..., Done]  # (request, cleaned_data, **url_kwargs) -> Done; may raise Refused
    confirm: Callable[..., str] | None = None  # (cleaned_data, **url_kwargs) -> the question, for actions that mail
    submit: str = "Continue"
    multipart: bool = False
    initial_from_query: tuple[str, ...] = ()


def run_action(request, action: Action, **url_kwargs):
    """Form, confirmation (when the action sends mail), service, admin log, message."""
    url = reverse(action.url_name, kwargs=url_kwargs or None)
    title = action.title(**url_kwargs) if callable(action.title) else action.title
    page = {"title": title, "action_url": url, "submit": action.submit, "multipart": action.multipart}
    if request.method == "POST":
        form = action.form_class(request.POST, request.FILES)
    elif action.form_class.base_fields or action.confirm is None:
        form = action.form_class(initial={name: request.GET.get(name, "") for name in action.initial_from_query})
        return _form_page(request, form, **page)
    else:  # nothing to fill in: straight to the question
        form = action.form_class({})
    if not form.is_valid():
        return _form_page(request, form, **page)
    if action.confirm is not None and request.POST.get("confirmed") != "yes":
        summary = action.confirm(form.cleaned_data, **url_kwargs)
        return TemplateResponse(
            request,
            "admin/dashboard_confirm.html",
            _context(request, title=title, form=form, action_url=url, summary=summary),
        )
    try:
        done = action.perform(request, form.cleaned_data, **url_kwargs)
    except Refused as refused:
        form.add_error(refused.field_name, refused.message)
        return _form_page(request, form, **page)
    record(request, done.log or done.message, done.about)
    messages.success(request, done.message)
    for error in done.errors:
        messages.error(request, error)
    return redirect("dashboard:index")


def _form_page(request, form, *, title: str, action_url: str, submit: str, multipart: bool = False):
    return TemplateResponse(
        request,
        "admin/dashboard_action.html",
        _context(request, title=title, form=form, action_url=action_url, intro="", submit=submit, multipart=multipart),
        status=400 if form.is_bound else 200,
    )


def record(request, message: str, obj=None) -> None:
    """Write the action to the admin log (shown under "Recent actions" and in object history)."""
    if obj is not None:
        LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=[obj], action_flag=CHANGE, change_message=message, single_object=True
        )
    else:
        LogEntry.objects.create(
            user_id=request.user.pk, action_flag=CHANGE, object_repr="Dashboard", change_message=message
        )


# The actions ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def preview_view(request):
    """The next digest of one subscriber, rendered exactly as they would get it; sends nothing."""
    page = {"title": "Preview a digest", "action_url": reverse("dashboard:preview"), "submit": "Preview"}
    if request.method == "GET":
        form = PreviewForm(initial={"subscriber": request.GET.get("subscriber", "")})
        return _form_page(request, form, **page)
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, **page)
    return render_preview(request, form.cleaned_data["subscriber"])


def render_preview(request, subscriber):
    """The preview page for one subscriber, logged; also usable as a Subscriber admin action's response."""
    rendered = content.preview_digest(subscriber)
    record(request, "Previewed the next digest from the dashboard.", subscriber)
    return TemplateResponse(
        request,
        "admin/dashboard_preview.html",
        _context(request, title=f"Next digest of {subscriber.email}", subscriber=subscriber, rendered=rendered),
    )


def _send_test(request, data) -> Done:
    subscriber, to_address = data["subscriber"], data["to_address"]
    content.send_test_digest(subscriber=subscriber, to_address=to_address)
    return Done(
        f"A test digest of {subscriber.email} was sent to {to_address}.",
        log=f"Sent a test digest of this subscriber to {to_address}.",
        about=subscriber,
    )


SEND_TEST = Action(
    "Send a test digest",
    "dashboard:send_test",
    SendTestForm,
    perform=_send_test,
    confirm=lambda data: f"Send the next digest of {data['subscriber'].email} to {data['to_address']} now?",
    initial_from_query=("subscriber",),
)


@require_http_methods(["GET", "POST"])
def send_test_view(request):
    return run_action(request, SEND_TEST)


@require_POST
def import_sources_view(request):
    """Fetch every configured source now (no mail: no confirmation step)."""
    report = paper_services.fetch_sources()
    created = sum(result.created for result in report.results.values())
    updated = sum(result.updated for result in report.results.values())
    summary = f"{len(report.results)} source(s) imported: {created} new, {updated} updated papers"
    if report.failed:
        summary += f"; {len(report.failed)} failed"
    if report.postponed:
        summary += f"; {len(report.postponed)} postponed"
    record(request, f"Imported papers from the configured sources: {summary}.")
    messages.success(request, f"Imported papers from the configured sources: {summary}.")
    for source, reason in report.failed.items():
        messages.error(request, f"Import failed: {source}: {reason}")
    return redirect("dashboard:index")


def _import_upload(request, data) -> Done:
    upload = data["file"]
    try:
        result = paper_services.import_bytes(upload.read(), fmt=data["fmt"], source_name=f"upload:{upload.name}")
    except paper_services.ImportFailed as exc:  # nothing was written; the ImportRun keeps the error too
        raise Refused("file", f"Import failed: {exc.reason}") from exc
    return Done(
        f"Imported {upload.name}: {result}.", log=f"Imported papers from the uploaded file {upload.name}: {result}."
    )


IMPORT_UPLOAD = Action(
    "Import papers from a file",
    "dashboard:import_upload",
    UploadImportForm,
    _import_upload,
    submit="Import",
    multipart=True,
)


@require_http_methods(["GET", "POST"])
def import_upload_view(request):
    return run_action(request, IMPORT_UPLOAD)


def _dispatch_words(data) -> tuple[str, str]:
    frequency = data["frequency"] or None
    which = f"{frequency} digests" if frequency else "weekly and daily digests"
    scope = "to every active subscriber, due or not" if data["force"] else "to the subscribers who are due"
    return which, scope


def _dispatch(request, data) -> Done:
    which, scope = _dispatch_words(data)
    result = dispatch.dispatch_due(
        enqueue=tasks.enqueue_deliveries, frequency=data["frequency"] or None, force=data["force"]
    )
    issues = ", ".join(result.issues) or "no issue due"
    summary = f"{issues}; {result.created} new deliveries, {result.rescued} resumed, {result.batches} batches queued"
    return Done(f"Sending the {which}: {summary}.", log=f"Sent the due {which} {scope}: {summary}.")


DISPATCH = Action(
    "Send the due digests now",
    "dashboard:dispatch_due",
    DispatchForm,
    perform=_dispatch,
    confirm=lambda data: "Send the {} now, {}?".format(*_dispatch_words(data)),
)


@require_http_methods(["GET", "POST"])
def dispatch_due_view(request):
    return run_action(request, DISPATCH)


def _retry_question(data, issue_id: int) -> str:
    issue = get_object_or_404(Issue, pk=issue_id)
    failed = selectors.failed_deliveries(issue)
    summary = f"Send the {failed.active:,} failed deliveries of {issue} to active subscribers again now?"
    if failed.all > failed.active:
        summary += f" ({failed.all - failed.active:,} more went to addresses no longer active: not retried.)"
    return summary


def _retry(request, data, issue_id: int) -> Done:
    issue = get_object_or_404(Issue, pk=issue_id)
    retried = dispatch.retry_failed(issue, enqueue=tasks.enqueue_deliveries)
    selectors.forget_issue_counts(issue.pk)
    return Done(
        f"{retried:,} failed deliveries of {issue} are being sent again.",
        log=f"Retried {retried} failed deliveries from the dashboard.",
        about=issue,
    )


RETRY = Action(
    lambda issue_id: f"Retry the failed deliveries of {get_object_or_404(Issue, pk=issue_id)}",
    "dashboard:retry_failed",
    forms.Form,
    perform=_retry,
    confirm=_retry_question,
)


@require_http_methods(["GET", "POST"])
def retry_failed_view(request, issue_id: int):
    return run_action(request, RETRY, issue_id=issue_id)


def _suppress(request, data) -> Done:
    email, reason = data["email"], data["reason"]
    if not suppression.suppress_address(email, reason=reason):
        raise Refused("email", "No subscriber who still gets mail has this address: nothing changed.")
    return Done(
        f"{email} is suppressed: no more mail goes to it.",
        log=f"Suppressed {email}: {reason}",
        about=selectors.subscriber_with(email),
    )


SUPPRESS = Action(
    "Suppress an address",
    "dashboard:suppress",
    SuppressForm,
    _suppress,
    submit="Suppress",
    initial_from_query=("email",),
)


@require_http_methods(["GET", "POST"])
def suppress_view(request):
    """Stop all mail to an address (no mail is sent: no confirmation step)."""
    return run_action(request, SUPPRESS)


def _restore(request, data) -> Done:
    email = data["email"]
    if not suppression.restore_address(email):
        raise Refused("email", "No suppressed subscriber has this address: nothing changed.")
    return Done(
        f"{email} is restored.", log=f"Restored {email} after suppression.", about=selectors.subscriber_with(email)
    )


RESTORE = Action(
    "Restore a suppressed address",
    "dashboard:restore",
    AddressForm,
    _restore,
    submit="Restore",
    initial_from_query=("email",),
)


@require_http_methods(["GET", "POST"])
def restore_view(request):
    return run_action(request, RESTORE)


# The circuit breaker: an issue it paused is resumed by an operator (digests.breaker) ------------


def _resume_question(data, issue_id: int) -> str:
    issue = get_object_or_404(Issue, pk=issue_id)
    return (
        f"Resume {issue}? It was paused because {issue.pause_reason or 'of an operator'}. "
        "Its queued and failed deliveries are sent now: resume once the cause is fixed."
    )


def _resume(request, data, issue_id: int) -> Done:
    issue = get_object_or_404(Issue, pk=issue_id)
    if issue.paused_at is None:
        raise Refused(NON_FIELD_ERRORS, f"{issue} is not paused: nothing changed.")
    sent = breaker.resume(issue, enqueue=tasks.enqueue_deliveries)
    selectors.forget_issue_counts(issue.pk)
    return Done(
        f"{issue} is resumed: {sent:,} deliveries are being sent.",
        log=f"Resumed the issue paused by the circuit breaker ({issue.pause_reason}); {sent} deliveries enqueued.",
        about=issue,
    )


RESUME = Action(
    lambda issue_id: f"Resume {get_object_or_404(Issue, pk=issue_id)}",
    "dashboard:resume_issue",
    forms.Form,
    perform=_resume,
    confirm=_resume_question,
    submit="Resume",
)


@require_http_methods(["GET", "POST"])
def resume_issue_view(request, issue_id: int):
    return run_action(request, RESUME, issue_id=issue_id)
