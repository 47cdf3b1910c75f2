"""Forms for the signup and preferences pages: they turn typed text into clean values
and show every bad value back next to its field."""

import functools

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from subscriptions import examples, notices, services
from subscriptions.models import Subscriber

WEEKDAY_CHOICES = list(enumerate(notices.WEEKDAYS))
HOUR_CHOICES = [(hour, f"{hour:02d}:00") for hour in range(24)]


@functools.cache
def _timezone_options() -> str:
    """Every known zone as <option>s, grouped by region, made once per process: about 600
    options, the same for everyone (rendered per request they were most of the page)."""
    groups: dict[str, list[str]] = {}
    for name in services.timezone_names():
        groups.setdefault(name.split("/", 1)[0] if "/" in name else "", []).append(name)
    html = [format_html('<option value="{}">{}</option>', name, name) for name in groups.pop("", [])]
    for region, names in groups.items():
        options = format_html_join(
            "", '<option value="{}">{}</option>', ((n, n.split("/", 1)[1].replace("_", " ")) for n in names)
        )
        html.append(format_html('<optgroup label="{}">{}</optgroup>', region, options))
    return "".join(html)


class TimezoneSelect(forms.Widget):
    """The time zone picked from a list (a <select> of every known zone, by region); the
    options are built once, and only the chosen one is marked per page."""

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        chosen = str(value or "")
        options = _timezone_options()
        if chosen:
            option = format_html('<option value="{}">', chosen)
            if option in options:
                options = options.replace(option, format_html('<option value="{}" selected>', chosen), 1)
            else:  # not a known zone (bad input): shown, so that the error names it
                options = format_html('<option value="{}" selected>{}</option>', chosen, chosen) + options
        return mark_safe(format_html('<select name="{}"{}>', name, flatatt(attrs)) + options + "</select>")  # noqa: S308


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
    example_papers = forms.CharField(
        label="Papers like the ones you want (optional)",
        widget=forms.Textarea(
            attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off", "list": "catalogue-titles"}
        ),
        required=False,
        max_length=4000,
        help_text="One per line: an arXiv id, a link to the paper, or its title. We send more like these.",
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
        widget=TimezoneSelect(),
        help_text="The time above is in this time zone.",
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

    def clean_example_papers(self):
        lines = services.split_lines(self.cleaned_data.get("example_papers", ""))
        if len(lines) > examples.MAX_EXAMPLES:
            raise forms.ValidationError(f"Give at most {examples.MAX_EXAMPLES} example papers.")
        try:
            return examples.resolve(lines)
        except examples.UnknownExamples as error:
            raise forms.ValidationError(str(error)) from None

    def clean_timezone(self):
        name = self.cleaned_data["timezone"].strip()
        if not services.is_valid_timezone(name):
            raise forms.ValidationError("Unknown time zone. Use a name like Europe/Berlin or America/New_York.")
        return name

    def clean(self):
        cleaned = super().clean()
        followed = cleaned.get("topics") or cleaned.get("authors") or cleaned.get("example_papers")
        if "topics" in cleaned and "authors" in cleaned and not followed and not self.has_error("example_papers"):
            self.add_error("topics", "Add at least one topic (or an author, or an example paper) to follow.")
        return cleaned

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        fields = ("topics", "authors", "frequency", "weekday", "send_hour", "timezone")
        return {**{key: data[key] for key in fields}, "example_paper_ids": data.get("example_papers", [])}


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

    field_order = [
        "email",
        "topics",
        "authors",
        "example_papers",
        "frequency",
        "weekday",
        "send_hour",
        "timezone",
        "website",
    ]

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()

    def is_bot(self) -> bool:
        return bool(self.data.get("website", "").strip())


class PreviewForm(forms.Form):
    """The query of /preview.json and of the no-JavaScript "Preview" button."""

    topics = forms.CharField(required=False, max_length=PreferencesFields.base_fields["topics"].max_length)
    authors = forms.CharField(required=False, max_length=PreferencesFields.base_fields["authors"].max_length)
    example_papers = forms.CharField(
        required=False, max_length=PreferencesFields.base_fields["example_papers"].max_length
    )

    def clean_topics(self):
        return services.clean_topics(services.split_lines(self.cleaned_data.get("topics", "")))[: services.MAX_TOPICS]

    def clean_example_papers(self):
        lines = services.split_lines(self.cleaned_data.get("example_papers", ""))[: examples.MAX_EXAMPLES]
        return examples.resolve_known(lines)

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
