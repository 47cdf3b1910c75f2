"""When a subscriber's digest is due: ``subscriptions.schedule`` (the confirm page and the
welcome mail name the next issue's date too), under the name the digests code uses."""

from subscriptions.schedule import (
    DAILY,
    UTC,
    WEEKLY,
    WELCOME,
    Schedule,
    Slot,
    current_slot,
    lookback,
    next_issue_text,
    next_slot,
    period_label,
    period_of,
    period_start,
    zone,
)

__all__ = [
    "DAILY",
    "UTC",
    "WEEKLY",
    "WELCOME",
    "Schedule",
    "Slot",
    "current_slot",
    "lookback",
    "next_issue_text",
    "next_slot",
    "period_label",
    "period_of",
    "period_start",
    "zone",
]
