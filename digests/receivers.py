"""Digests' answers to what the subscriptions app announces."""

from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from digests.dashboard import selectors
from digests.models import Delivery
from subscriptions.models import Subscriber
from subscriptions.signals import address_suppressed


@receiver(address_suppressed, dispatch_uid="digests.suppress_queued_deliveries")
def suppress_queued_deliveries(sender, email, reason, **kwargs):
    """A suppressed address's queued copies are settled as suppressed, not left queued."""
    Delivery.objects.filter(subscriber__email=email, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SUPPRESSED, last_error=f"address suppressed: {reason}"[:1000], updated_at=timezone.now()
    )


@receiver(post_delete, sender=Subscriber, dispatch_uid="digests.forget_issue_counts_on_delete")
def forget_issue_counts_on_delete(sender, **kwargs):
    """A deleted subscriber takes their deliveries along: the dashboard's cached counts go stale."""
    selectors.forget_issue_counts()
