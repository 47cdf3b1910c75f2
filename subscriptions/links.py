"""Absolute signed links that go into emails (the site has no passwords)."""

from django.conf import settings
from django.urls import reverse

from subscriptions.tokens import make_token


def _absolute(name: str, token: str) -> str:
    return settings.SITE_URL + reverse(name, args=[token])


def confirm_url(subscriber) -> str:
    return _absolute("subscriptions:confirm", make_token("confirm", subscriber.id, e=subscriber.email))


def preferences_url(subscriber) -> str:
    return _absolute("subscriptions:preferences", make_token("manage", subscriber.id))


def unsubscribe_url(subscriber) -> str:
    return _absolute("subscriptions:unsubscribe", make_token("unsubscribe", subscriber.id))
