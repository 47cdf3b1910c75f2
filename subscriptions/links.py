"""Absolute signed links that go into emails (the site has no passwords)."""

import functools

from django.conf import settings
from django.urls import get_script_prefix, reverse

from subscriptions.tokens import make_token

_PLACEHOLDER = "TOKEN"


@functools.lru_cache(maxsize=64)
def _path_around_token(name: str, script_prefix: str) -> tuple[str, str]:
    """The URL path of ``name`` split around its token argument.

    ``reverse`` costs about 60 µs and every digest carries several signed links, so it is
    done once per URL name (and script prefix); tokens are URL-safe and need no quoting.
    """
    before, _, after = reverse(name, args=[_PLACEHOLDER]).partition(_PLACEHOLDER)
    return before, after


def absolute_url(name: str, token: str) -> str:
    """``SITE_URL`` + the path of URL ``name`` whose single argument is ``token``."""
    before, after = _path_around_token(name, get_script_prefix())
    return f"{settings.SITE_URL}{before}{token}{after}"


def confirm_url(subscriber) -> str:
    return absolute_url("subscriptions:confirm", make_token("confirm", subscriber.id, e=subscriber.email))


def preferences_url(subscriber) -> str:
    return absolute_url("subscriptions:preferences", make_token("manage", subscriber.id))


def unsubscribe_url(subscriber) -> str:
    return absolute_url("subscriptions:unsubscribe", make_token("unsubscribe", subscriber.id))
