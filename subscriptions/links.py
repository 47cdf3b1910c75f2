"""Absolute signed links that go into emails (the site has no passwords)."""

import functools

from django.conf import settings
from django.urls import get_script_prefix, reverse

from subscriptions.tokens import make_token, read_token

_PLACEHOLDER = "TOKEN"


@functools.lru_cache(maxsize=64)
def _path_around_token(name: str, script_prefix: str) -> tuple[str, str]:
    """The URL path of ``name`` split around its token argument.

    Every digest carries several signed links and ``reverse`` is slow next to the rest, so
    it is done once per URL name (and script prefix); tokens are URL-safe and need no quoting.
    """
    before, _, after = reverse(name, args=[_PLACEHOLDER]).partition(_PLACEHOLDER)
    return before, after


def absolute_url(name: str, token: str) -> str:
    """``SITE_URL`` + the path of URL ``name`` whose single argument is ``token``."""
    before, after = _path_around_token(name, get_script_prefix())
    return f"{settings.SITE_URL}{before}{token}{after}"


# One recipe per kind of link: what its token says, for whom. Pages that check a
# token read it with ``tokens.read_token`` and the same purpose.


def confirmation_stamp(subscriber) -> int:
    """Which confirmation email a confirm link came from: a new one (a resend, a signup
    again, a return after unsubscribing) makes every earlier link stop working."""
    sent = subscriber.confirmation_sent_at
    return int(sent.timestamp() * 1000) if sent else 0


def confirm_token(subscriber) -> str:
    return make_token("confirm", subscriber.id, e=subscriber.email, c=confirmation_stamp(subscriber))


def manage_token(subscriber) -> str:
    return make_token("manage", subscriber.id)


def unsubscribe_token(subscriber) -> str:
    return make_token("unsubscribe", subscriber.id)


def confirm_url(subscriber) -> str:
    return absolute_url("subscriptions:confirm", confirm_token(subscriber))


def preferences_url(subscriber) -> str:
    return absolute_url("subscriptions:preferences", manage_token(subscriber))


def unsubscribe_url(subscriber) -> str:
    return absolute_url("subscriptions:unsubscribe", unsubscribe_token(subscriber))


def webview_url(subscriber_id: int, delivery_id: int) -> str:
    """The "view in browser" link of one delivered copy (the ``digests:web`` page)."""
    return absolute_url("digests:web", make_token("webview", subscriber_id, d=delivery_id))


def read_webview_token(token: str) -> tuple[int | None, int | None]:
    """(subscriber id, delivery id) of a "view in browser" link; raises ``BadToken``."""
    payload = read_token("webview", token)
    return payload.get("s"), payload.get("d")


class FeedbackLinks:
    """The 👍/👎 links of one subscriber's digest.

    One signed token says whose votes they are; the paper, its topic and the vote are
    plain in the path (``/f/<token>/<paper>/<topic or 0>/<up|down>/``, the ``feedback:vote``
    URL): one signature per digest, not one per link. Whoever
    holds the digest could already vote on its papers, and a vote only moves that
    subscriber's own ranking, so a vote on another paper gains nothing; the preferences
    link beside these gives its holder more than that.
    """

    def __init__(self, subscriber_id: int):
        self._prefix = absolute_url("feedback:link", make_token("feedback", subscriber_id))

    def of(self, paper_id: int, topic_id: int | None = None) -> tuple[str, str]:
        """Absolute (up_url, down_url) for one paper."""
        stem = f"{self._prefix}{paper_id}/{topic_id or 0}/"
        return f"{stem}up/", f"{stem}down/"


def inert_url(link: str) -> str:
    """An inert link for operators' previews and test copies (``link``: preferences,
    unsubscribe, up, down). A test copy goes to an operator's mailbox: with the reader's
    live links, a click there (or that mailbox's scanner) would act on the reader."""
    return absolute_url("subscriptions:test-copy", link)


class InertFeedbackLinks:
    """``FeedbackLinks`` for a test copy: every 👍/👎 opens the page that says it is a test."""

    def __init__(self):
        self._up, self._down = inert_url("up"), inert_url("down")

    def of(self, paper_id: int, topic_id: int | None = None) -> tuple[str, str]:
        return self._up, self._down
