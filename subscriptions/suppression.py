"""Stopping mail to an address that cannot or must not get it, and lifting that again.

Suppression is the mail side's verdict on an address (a hard bounce, a complaint, an
operator's decision); unsubscribing is the reader's own (``services.unsubscribe``).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from subscriptions import services
from subscriptions.models import Subscriber
from subscriptions.signals import address_suppressed

logger = logging.getLogger(__name__)

SUPPRESSING_EVENTS = {"bounced", "complained"}
SUPPRESSING_REJECTS = {"bounced", "invalid", "spam"}


def suppress_address(email: str, *, reason: str) -> int:
    """Stop all mail to an address (hard bounce, complaint, operator); returns subscribers changed.

    Its queued deliveries become SUPPRESSED (``address_suppressed``). Unsubscribed people
    are left as they are.
    """
    email = (email or "").strip().lower()
    with transaction.atomic():
        changed = (
            Subscriber.objects.filter(email=email)
            .exclude(status__in=[Subscriber.Status.BOUNCED, Subscriber.Status.UNSUBSCRIBED])
            .update(
                status=Subscriber.Status.BOUNCED, suppressed_at=timezone.now(), suppression_reason=(reason or "")[:200]
            )
        )
        address_suppressed.send(sender=Subscriber, email=email, reason=reason)
    if changed:
        logger.warning("address suppressed", extra={"reason": reason})
    return changed


def restore_address(email: str) -> int:
    """Lift a suppression (the operator fixed the cause); returns subscribers changed."""
    email = (email or "").strip().lower()
    return Subscriber.objects.filter(email=email, status=Subscriber.Status.BOUNCED).update(
        status=Subscriber.Status.ACTIVE, suppressed_at=None, suppression_reason=""
    )


def handle_provider_event(
    *,
    event_type: str,
    recipient: str | None,
    reject_reason: str | None = None,
    description: str = "",
    message_id: str | None = None,
    provider: str = "",
) -> str:
    """React to a provider's event (via anymail): hard bounces and complaints suppress.

    Returns what was done: "suppressed", "unsubscribed" or "ignored". Soft bounces
    (``deferred``) are the provider's to retry and change nothing here.
    """
    if not recipient:
        return "ignored"
    if event_type in SUPPRESSING_EVENTS or (event_type == "rejected" and reject_reason in SUPPRESSING_REJECTS):
        reason = f"{provider} {event_type}: {reject_reason or ''} {description or ''}"
        suppress_address(recipient, reason=" ".join(reason.split())[:200])
        return "suppressed"
    if event_type == "unsubscribed":
        services.unsubscribe_address(recipient)
        return "unsubscribed"
    return "ignored"
