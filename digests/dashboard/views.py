"""The staff dashboard (/admin/dashboard/): one page of aggregates, and action views.

The page reads only through ``selectors``. Every action goes the same way
(``actions.run_action``): its own permission, a form, a confirmation step for those
that touch people, one service call, a LogEntry, a message and back to the dashboard.
All views are wrapped in ``admin.site.admin_view`` (staff only, CSRF-protected, never
cached) in ``digests.admin_urls``.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods

from digests import breaker, content, dispatch, tasks
from digests.dashboard import alerts, selectors
from digests.dashboard.actions import Action, Done, Refused, record, run_action
from digests.dashboard.actions import page_context as _context
from digests.dashboard.charts import growth_chart, papers_chart
from digests.dashboard.forms import (
    AddressForm,
    DispatchForm,
    PreviewForm,
    SendTestForm,
    SuppressForm,
    UploadImportForm,
)
from digests.dashboard.people import SubscriberImportForm
from digests.models import OPERATOR_PERMISSIONS, Issue
from papers import services as paper_services
from subscriptions import suppression


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
                "import_subscribers": SubscriberImportForm(auto_id="import-subscribers-%s"),
            },
            paper_sources=settings.PAPER_SOURCES,
            delivery_alerts=alerts.delivery_alerts(),
            can_act=any(request.user.has_perm(f"digests.{codename}") for codename, _ in OPERATOR_PERMISSIONS),
        ),
    )


@require_GET
def progress_view(request):
    """JSON for the self-refreshing progress bar: the issue being sent, else the newest."""
    progress = selectors.current_issue_progress()
    return JsonResponse({"issue": progress.as_json() if progress else None})


# The actions ---------------------------------------------------------------------------


PREVIEW = Action(
    "Preview a digest",
    "dashboard:preview",
    PreviewForm,
    perform=lambda request, data: render_preview(request, data["subscriber"]),
    permission="digests.preview_digest",
    submit="Preview",
    initial_from_query=("subscriber",),
)


@require_http_methods(["GET", "POST"])
def preview_view(request):
    """The next digest of one subscriber, rendered exactly as they would get it; sends nothing."""
    return run_action(request, PREVIEW)


def render_preview(request, subscriber):
    """The preview page for one subscriber, logged; also usable as a Subscriber admin action's response."""
    rendered = content.preview_digest(subscriber)
    record(request, "Previewed the next digest from the dashboard.", subscriber)
    response = TemplateResponse(
        request,
        "admin/dashboard_preview.html",
        _context(request, title=f"Next digest of {subscriber.email}", subscriber=subscriber, rendered=rendered),
    )
    # The email's HTML in its sandboxed iframe inherits this page's Content-Security-Policy:
    # let its own <style> blocks apply (as on the web version, digests.views); still no scripts.
    response._csp_update = {"style-src": ["'unsafe-inline'"]}
    return response


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
    permission="digests.send_test_digest",
    confirm=lambda data: f"Send the next digest of {data['subscriber'].email} to {data['to_address']} now?",
    initial_from_query=("subscriber",),
)


@require_http_methods(["GET", "POST"])
def send_test_view(request):
    return run_action(request, SEND_TEST)


def _import_sources(request, data) -> Done:
    report = paper_services.fetch_sources()
    created = sum(result.created for result in report.results.values())
    updated = sum(result.updated for result in report.results.values())
    summary = f"{len(report.results)} source(s) imported: {created} new, {updated} updated papers"
    if report.failed:
        summary += f"; {len(report.failed)} failed"
    if report.postponed:
        summary += f"; {len(report.postponed)} postponed"
    return Done(
        f"Imported papers from the configured sources: {summary}.",
        errors=[f"Import failed: {source}: {reason}" for source, reason in report.failed.items()],
    )


IMPORT_SOURCES = Action(
    "Import papers from the configured sources",
    "dashboard:import_sources",
    forms.Form,
    _import_sources,
    permission="digests.import_papers",
    submit="Fetch sources",
)


@require_http_methods(["GET", "POST"])
def import_sources_view(request):
    """Fetch every configured source now (no mail: no confirmation step)."""
    return run_action(request, IMPORT_SOURCES)


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
    permission="digests.import_papers",
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


def _dispatch_question(data) -> str:
    which, scope = _dispatch_words(data)
    due = dispatch.count_due(frequency=data["frequency"] or None, force=data["force"])
    if not due:
        return f"Send the {which} now, {scope}? Nobody is due: no email would go out."
    people = sum(due.values())
    per_issue = ", ".join(f"{label}: {n:,}" for label, n in due.items())
    return (
        f"Send the {which} now, {scope}? This emails {people:,} subscriber{'s' if people != 1 else ''} ({per_issue})."
    )


DISPATCH = Action(
    "Send the due digests now",
    "dashboard:dispatch_due",
    DispatchForm,
    perform=_dispatch,
    permission="digests.dispatch_digests",
    confirm=_dispatch_question,
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
    permission="digests.retry_deliveries",
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
    permission="digests.suppress_address",
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
    permission="digests.restore_address",
    submit="Restore",
    initial_from_query=("email",),
)


@require_http_methods(["GET", "POST"])
def restore_view(request):
    return run_action(request, RESTORE)


# The circuit breaker: an issue it paused is resumed by an operator (digests.breaker) ------------


def _resume_question(data, issue_id: int) -> str:
    issue = get_object_or_404(Issue, pk=issue_id)
    held = selectors.held_deliveries(issue)
    return (
        f"Resume {issue}? It was paused because {issue.pause_reason or 'of an operator'}. "
        f"Its {held:,} queued and failed deliveries to active subscribers are sent now, "
        f"so {held:,} {'person gets' if held == 1 else 'people get'} mail: resume once the cause is fixed."
    )


def _resume(request, data, issue_id: int) -> Done:
    issue = get_object_or_404(Issue, pk=issue_id)
    if issue.paused_at is None:
        raise Refused(NON_FIELD_ERRORS, f"{issue} is not paused: nothing changed.")
    sent = breaker.resume(issue, enqueue=tasks.enqueue_deliveries)  # sets updated_at: the counts follow
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
    permission="digests.retry_deliveries",
    confirm=_resume_question,
    submit="Resume",
)


@require_http_methods(["GET", "POST"])
def resume_issue_view(request, issue_id: int):
    return run_action(request, RESUME, issue_id=issue_id)
