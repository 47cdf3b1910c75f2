"""Thin tasks: load the subscriber, send one email, retry only when the mail server
is unreachable or answers with a temporary error."""

import smtplib

from celery import shared_task

from subscriptions import notices
from subscriptions.models import Subscriber

TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=5)
def send_confirmation_email(subscriber_id: int) -> str:
    subscriber = Subscriber.objects.filter(id=subscriber_id, status=Subscriber.Status.PENDING).first()
    if subscriber is None:
        return "not pending"
    notices.send_confirmation_email(subscriber)
    return "sent"


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=5)
def send_manage_email(subscriber_id: int) -> str:
    subscriber = Subscriber.objects.filter(id=subscriber_id).first()
    if subscriber is None:
        return "gone"
    notices.send_manage_email(subscriber)
    return "sent"
