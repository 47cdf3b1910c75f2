"""Provider events (bounces, complaints, unsubscribes) arriving through django-anymail's
tracking webhooks."""

from anymail.signals import tracking
from django.dispatch import receiver

from subscriptions import suppression


@receiver(tracking, dispatch_uid="subscriptions.provider_events")
def on_provider_event(sender, event, esp_name, **kwargs):
    suppression.handle_provider_event(
        event_type=event.event_type,
        recipient=event.recipient,
        reject_reason=event.reject_reason,
        description=event.description or event.mta_response or "",
        message_id=event.message_id,
        provider=esp_name,
    )
