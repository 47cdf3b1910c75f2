"""Digests' answers to what the subscriptions app announces."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from digests import tasks, welcome
from digests.dashboard import selectors
from digests.models import Delivery
from subscriptions.models import Subscriber
from subscriptions.signals import address_suppressed, personal_data_requested, subscriber_confirmed


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
    row = welcome.welcome_delivery(subscriber)
    # robust: a broker outage must not fail the confirmation; the dispatcher's rescue of
    # stale QUEUED rows sends it later.
    transaction.on_commit(lambda: tasks.deliver_batch.delay([row.id]), robust=True)


@receiver(post_delete, sender=Subscriber, dispatch_uid="digests.forget_issue_counts_on_delete")
def forget_issue_counts_on_delete(sender, **kwargs):
    """A deleted subscriber takes their deliveries along: the dashboard's cached counts go stale."""
    selectors.forget_issue_counts()


@receiver(personal_data_requested, dispatch_uid="digests.add_deliveries_to_personal_data")
def add_deliveries_to_personal_data(sender, subscriber, data, **kwargs):
    """A person's own data export lists the digests mailed to them and what each carried."""
    data["digests"] = [
        {
            "issue": f"{frequency} {period}",
            "status": status,
            "sent_at": sent_at.isoformat() if sent_at else None,
            "paper_ids": paper_ids,
        }
        for frequency, period, status, sent_at, paper_ids in Delivery.objects.filter(subscriber=subscriber)
        .order_by("created_at", "id")
        .values_list("issue__frequency", "issue__period", "status", "sent_at", "paper_ids")
    ]
