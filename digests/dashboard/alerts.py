"""What needs an operator now, above everything else on the dashboard: issues the circuit
breaker paused (with a "Resume" action), deliveries waiting for a retry with their last
error, and confirmation emails that could not be sent.

Kept apart from ``selectors.dashboard`` (the figures): a fixed ``ALERT_QUERIES`` queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digests.models import Delivery, Issue
from subscriptions.models import Subscriber

SHOWN = 10  # rows listed per kind; the total is given beside them

ALERT_QUERIES = 4  # paused issues, deferred rows and their count, failed confirmations


@dataclass(frozen=True)
class DeferredDelivery:
    delivery_id: int
    email: str
    issue_label: str
    attempts: int
    error: str
    updated_at: object


@dataclass(frozen=True)
class FailedConfirmation:
    subscriber_id: int
    email: str
    error: str
    since: object


@dataclass
class DeliveryAlerts:
    paused: list[Issue] = field(default_factory=list)
    deferred: list[DeferredDelivery] = field(default_factory=list)
    deferred_total: int = 0
    confirmations: list[FailedConfirmation] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.paused or self.deferred_total or self.confirmations)


def delivery_alerts() -> DeliveryAlerts:
    paused = list(Issue.objects.filter(paused_at__isnull=False).order_by("-paused_at")[:SHOWN])
    waiting = Delivery.objects.filter(status=Delivery.Status.QUEUED).exclude(last_error="")
    rows = waiting.select_related("issue", "subscriber").order_by("-updated_at")[:SHOWN]
    deferred = [
        DeferredDelivery(r.id, r.subscriber.email, str(r.issue), r.attempts, r.last_error, r.updated_at) for r in rows
    ]
    return DeliveryAlerts(
        paused=paused, deferred=deferred, deferred_total=waiting.count(), confirmations=failed_confirmations()
    )


def failed_confirmations() -> list[FailedConfirmation]:
    """Pending subscribers whose confirmation email the mail server did not take."""
    pending = Subscriber.objects.filter(status=Subscriber.Status.PENDING).exclude(confirmation_error="")
    return [
        FailedConfirmation(s.id, s.email, s.confirmation_error, s.confirmation_sent_at)
        for s in pending.order_by("-confirmation_sent_at")[:SHOWN]
    ]
