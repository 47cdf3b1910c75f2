"""Subscribers in and out of the dashboard: a CSV import (``subscriptions.imports``,
checked whole and confirmed with its counts before anything is written) and a CSV
export of every subscriber (streamed: the list may be long)."""

from __future__ import annotations

import csv

from django import forms
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from digests.dashboard.actions import Action, Done, Refused, record, require, run_action
from subscriptions import exports, imports
from subscriptions.models import Subscriber


class SubscriberImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        required=False,
        help_text="Columns: email, topics (several separated by ;), and optionally frequency (weekly or daily), "
        "timezone and consent (yes or no). All rows are checked before anything is imported.",
    )
    consent_confirmed = forms.BooleanField(
        label="The rows marked consent=yes agreed to get this digest",
        required=False,
        help_text="Only then are they imported as confirmed; everybody else gets a confirmation email.",
    )
    # The checked file's text, carried through the confirmation step (a file cannot be).
    content = forms.CharField(widget=forms.HiddenInput, required=False)
    file_name = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        try:
            if upload is not None:
                if upload.size > imports.MAX_BYTES:
                    raise forms.ValidationError(f"The file is larger than {imports.MAX_BYTES:,} bytes: split it.")
                data["content"], data["file_name"] = imports.decode(upload.read()), upload.name
            if not data.get("content"):
                raise forms.ValidationError("Choose a CSV file to import.")
            data["plan"] = imports.plan_import(data["content"], consent_confirmed=data.get("consent_confirmed", False))
        except imports.ImportRefused as refused:
            raise forms.ValidationError(
                ["Nothing was imported. Fix these rows and upload the file again:", *refused.messages()]
            ) from None
        self.data = self.data.copy()  # the confirmation page carries the text on, not the file
        self.data["content"], self.data["file_name"] = data["content"], data["file_name"]
        return data


def _import_question(data) -> str:
    plan = data["plan"]
    people = f"{plan.touched:,} new subscriber{'s' if plan.touched != 1 else ''}"
    return f"Import {people} from {data['file_name'] or 'the file'}? {plan.summary()}."


def _import(request, data) -> Done:
    try:
        plan = imports.import_subscribers(data["content"], consent_confirmed=data["consent_confirmed"])
    except imports.ImportRefused as refused:
        raise Refused(None, " ".join(refused.messages())) from refused
    return Done(
        f"Imported {data['file_name'] or 'the file'}: {plan.summary()}.",
        log=f"Imported subscribers from {data['file_name'] or 'a CSV file'}: {plan.summary()}.",
    )


IMPORT_SUBSCRIBERS = Action(
    "Import subscribers from a CSV file",
    "dashboard:import_subscribers",
    SubscriberImportForm,
    _import,
    permission="digests.import_subscribers",
    confirm=_import_question,
    confirm_button="Yes, import",
    confirm_note="All rows or none. Confirmation emails go out once the import is saved.",
    submit="Check the file",
    multipart=True,
)


@require_http_methods(["GET", "POST"])
def import_subscribers_view(request):
    return run_action(request, IMPORT_SUBSCRIBERS)


class _Echo:
    """A file-like object whose write returns the line: csv.writer feeding a stream."""

    def write(self, value):
        return value


def csv_download(rows, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def export_subscribers_view(request):
    """Every subscriber (or those of one ``status``) as CSV; the download is logged."""
    require(request, "digests.export_subscribers")
    status = request.GET.get("status", "")
    if status not in Subscriber.Status.values:
        status = ""
    record(request, f"Exported the {status or 'all'} subscribers as CSV.")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csv_download(exports.subscriber_rows(status=status or None), f"subscribers-{status or 'all'}-{stamp}.csv")
