"""The welcome issue: a new subscriber's first copy, right after confirming, with the
past week's strong matches for their topics (none: nothing is sent).

It is an issue like the others ("welcome" and the reader's local date), so the
delivery pipeline sends it exactly once, and what it carried is never sent to the
reader again."""

from __future__ import annotations

from django.utils import timezone

from digests import schedule
from digests.models import Delivery, Issue


def welcome_delivery(subscriber, *, now=None) -> Delivery:
    """The subscriber's welcome copy (made once per local day, whoever asks twice)."""
    now = now or timezone.now()
    local_day = now.astimezone(schedule.zone(subscriber.timezone)).date()
    issue, _ = Issue.objects.get_or_create(frequency=schedule.WELCOME, period=local_day.isoformat())
    row, _ = Delivery.objects.get_or_create(issue=issue, subscriber=subscriber)
    return row
