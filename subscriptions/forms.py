"""Forms for the signup and preferences pages: they turn typed text into clean values
and show every bad value back next to its field."""

from django import forms

from subscriptions import notices, services
from subscriptions.models import Subscriber

WEEKDAY_CHOICES = list(enumerate(notices.WEEKDAYS))
HOUR_CHOICES = [(hour, f"{hour:02d}:00") for hour in range(24)]


class PreferencesFields(forms.Form):
    """What a subscriber chooses: topics, authors and when mail arrives."""

    topics = forms.CharField(
        label="Topics you follow",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        required=False,
        max_length=services.MAX_TOPICS * (services.TOPIC_MAX_LENGTH + 2) * 2,
        help_text='One per line, in plain words. Use "quotes" for an exact phrase and -word to leave a word out.',
    )
    authors = forms.CharField(
        label="Authors you follow (optional)",
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off"}),
        required=False,
        max_length=services.MAX_FOLLOWED_AUTHORS * (services.AUTHOR_MAX_LENGTH + 2) * 2,
        help_text="One per line or separated by commas.",
    )
    frequency = forms.ChoiceField(
        label="How often",
        choices=[(Subscriber.Frequency.WEEKLY, "Weekly"), (Subscriber.Frequency.DAILY, "Daily")],
        initial=Subscriber.Frequency.WEEKLY,
        widget=forms.RadioSelect,
    )
    weekday = forms.TypedChoiceField(
        label="Day",
        choices=WEEKDAY_CHOICES,
        coerce=int,
        initial=0,
        required=False,
        empty_value=0,
    )
    send_hour = forms.TypedChoiceField(
        label="Time",
        choices=HOUR_CHOICES,
        coerce=int,
        initial=services.DEFAULT_SEND_HOUR,
        required=False,
        empty_value=services.DEFAULT_SEND_HOUR,
    )
    timezone = forms.CharField(
        label="Time zone",
        max_length=64,
        initial="UTC",
        widget=forms.TextInput(attrs={"list": "timezones", "autocomplete": "off", "spellcheck": "false"}),
        help_text="The time above is in this time zone, e.g. Europe/Berlin.",
    )

    def clean_topics(self):
        typed = services.split_lines(self.cleaned_data.get("topics", ""))
        problems = services.topic_errors(typed)
        if problems:
            raise forms.ValidationError(problems)
        topics = services.clean_topics(typed)
        if len(topics) > services.MAX_TOPICS:
            raise forms.ValidationError(f"Follow at most {services.MAX_TOPICS} topics.")
        return topics

    def clean_authors(self):
        authors = services.clean_authors(services.split_lines(self.cleaned_data.get("authors", ""), commas=True))
        if len(authors) > services.MAX_FOLLOWED_AUTHORS:
            raise forms.ValidationError(f"Follow at most {services.MAX_FOLLOWED_AUTHORS} authors.")
        return authors

    def clean_timezone(self):
        name = self.cleaned_data["timezone"].strip()
        if not services.is_valid_timezone(name):
            raise forms.ValidationError("Unknown time zone. Use a name like Europe/Berlin or America/New_York.")
        return name

    def clean(self):
        cleaned = super().clean()
        if "topics" in cleaned and "authors" in cleaned and not cleaned["topics"] and not cleaned["authors"]:
            self.add_error("topics", "Add at least one topic (or an author) to follow.")
        return cleaned

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {key: data[key] for key in ("topics", "authors", "frequency", "weekday", "send_hour", "timezone")}


class SignupForm(PreferencesFields):
    email = forms.EmailField(
        label="Your email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.org"}),
    )
    # Honeypot: hidden from people (CSS and aria-hidden), filled in by form-stuffing bots.
    website = forms.CharField(
        required=False,
        label="Leave this field empty",
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    field_order = ["email", "topics", "authors", "frequency", "weekday", "send_hour", "timezone", "website"]

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()

    def is_bot(self) -> bool:
        return bool(self.data.get("website", "").strip())


class PreviewForm(forms.Form):
    """The query of /preview.json and of the no-JavaScript "Preview" button."""

    topics = forms.CharField(required=False, max_length=PreferencesFields.base_fields["topics"].max_length)
    authors = forms.CharField(required=False, max_length=PreferencesFields.base_fields["authors"].max_length)

    def clean_topics(self):
        return services.clean_topics(services.split_lines(self.cleaned_data.get("topics", "")))[: services.MAX_TOPICS]

    def clean_authors(self):
        return services.clean_authors(services.split_lines(self.cleaned_data.get("authors", ""), commas=True))[
            : services.MAX_FOLLOWED_AUTHORS
        ]


class LostLinkForm(forms.Form):
    """ "Lost your link?": an address to email the manage link to."""

    email = forms.EmailField(
        label="Your email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.org"}),
    )
    website = SignupForm.base_fields["website"]  # the same honeypot as the signup form

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()

    def is_bot(self) -> bool:
        return bool(self.data.get("website", "").strip())
