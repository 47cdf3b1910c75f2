"""The dashboard's forms: every action validates one before it calls a service."""

from __future__ import annotations

from django import forms
from django.conf import settings

from digests.dashboard import selectors
from digests.models import Issue
from papers.importers import FORMATS


class SubscriberField(forms.EmailField):
    """A subscriber picked by email address (a select box would not scale to 100k)."""

    def clean(self, value):
        email = super().clean(value)
        subscriber = selectors.subscriber_with(email)
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
