"""Thin tasks: load the subscriber, send one email, retry only when the mail server
is unreachable or answers with a temporary error.

A confirmation email the server did not take is recorded on the subscriber (the
dashboard lists it) and retried like a digest: temporary failures with backoff in the
task, every other failure hourly (``retry_failed_confirmations``, beat) while the link
is fresh, up to ``CONFIRMATION_MAX_ATTEMPTS`` attempts.
"""

import datetime as dt
import smtplib

from celery import shared_task
from django.utils import timezone

from emails.replies import refusal_of
from subscriptions import notices
from subscriptions.models import Subscriber
from subscriptions.tokens import CONFIRM_MAX_AGE

TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)
CONFIRMATION_MAX_ATTEMPTS = 8


@shared_task(bind=True, max_retries=5)
def send_confirmation_email(self, subscriber_id: int) -> str:
    subscriber = Subscriber.objects.filter(id=subscriber_id, status=Subscriber.Status.PENDING).first()
    if subscriber is None:
        return "not pending"
    try:
        notices.send_confirmation_email(subscriber)
    except (smtplib.SMTPException, OSError) as exc:
        refusal = refusal_of(exc)
        Subscriber.objects.filter(id=subscriber.id).update(
            confirmation_error=refusal.describe(), confirmation_attempts=subscriber.confirmation_attempts + 1
        )
        if refusal.transient and self.request.retries < self.max_retries:
            raise self.retry(countdown=min(30 * 2**self.request.retries, 600), exc=exc) from exc
        return "failed"
    if subscriber.confirmation_error:
        Subscriber.objects.filter(id=subscriber.id).update(confirmation_error="")
    return "sent"


@shared_task
def retry_failed_confirmations() -> int:
    """Beat, hourly: send again the confirmation emails the server refused, while their
    link is fresh and the attempts last; returns how many."""
    fresh = timezone.now() - dt.timedelta(seconds=CONFIRM_MAX_AGE)  # after that the signup has expired
    failed = Subscriber.objects.filter(
        status=Subscriber.Status.PENDING,
        confirmation_sent_at__gte=fresh,
        confirmation_attempts__lt=CONFIRMATION_MAX_ATTEMPTS,
    ).exclude(confirmation_error="")
    ids = list(failed.values_list("id", flat=True))
    for subscriber_id in ids:
        send_confirmation_email.delay(subscriber_id)
    return len(ids)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=5)
def send_manage_email(subscriber_id: int, asked_for_link: bool = False) -> str:
    subscriber = Subscriber.objects.filter(id=subscriber_id).first()
    if subscriber is None:
        return "gone"
    notices.send_manage_email(subscriber, asked_for_link=asked_for_link)
    return "sent"
