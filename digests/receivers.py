"""Digests' answers to what the subscriptions app announces."""

from django.dispatch import receiver
from django.utils import timezone

from digests import tasks, welcome
from digests.models import Delivery
from subscriptions.signals import address_suppressed, subscriber_confirmed


@receiver(address_suppressed, dispatch_uid="digests.suppress_queued_deliveries")
def suppress_queued_deliveries(sender, email, reason, **kwargs):
    """A suppressed address's queued copies are settled as suppressed, not left queued."""
    Delivery.objects.filter(subscriber__email=email, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SUPPRESSED, last_error=f"address suppressed: {reason}"[:1000], updated_at=timezone.now()
    )


@receiver(subscriber_confirmed, dispatch_uid="digests.queue_welcome_issue")
def queue_welcome_issue(sender, subscriber, **kwargs):
    """Right after confirming: the welcome issue, sent by the workers once the confirmation
    commits (nothing strong this week: the row is skipped and nothing is sent)."""
    tasks.enqueue_deliveries([welcome.welcome_delivery(subscriber).id])
