"""Provider events (bounces, complaints) arriving through django-anymail's tracking webhooks."""

from anymail.signals import tracking
from django.dispatch import receiver

from digests import services


@receiver(tracking, dispatch_uid="digests.provider_events")
def on_provider_event(sender, event, esp_name, **kwargs):
    services.handle_provider_event(
        event_type=event.event_type,
        recipient=event.recipient,
        reject_reason=event.reject_reason,
        description=event.description or event.mta_response or "",
        message_id=event.message_id,
        provider=esp_name,
    )
