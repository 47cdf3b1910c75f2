"""Signed links in emails: the cached URL shape must equal what ``reverse`` gives."""

import pytest
from django.urls import reverse, set_script_prefix

from subscriptions.links import absolute_url
from subscriptions.tokens import make_token


@pytest.mark.parametrize(
    "name", ["subscriptions:preferences", "subscriptions:unsubscribe", "feedback:link", "digests:web"]
)
@pytest.mark.parametrize("prefix", ["/", "/digest/"])
def test_absolute_url_matches_reverse(name, prefix, settings):
    settings.SITE_URL = "https://digest.example.org"
    token = make_token("manage", 42, p=7)
    set_script_prefix(prefix)
    try:
        assert absolute_url(name, token) == "https://digest.example.org" + reverse(name, args=[token])
        assert absolute_url(name, token).count(prefix.rstrip("/") + "/") >= 1
    finally:
        set_script_prefix("/")
