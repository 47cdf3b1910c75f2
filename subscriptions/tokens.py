"""Signed links: no passwords, each link carries what it may do and for whom.

A token is ``django.core.signing`` over ``{"s": subscriber_id, ...}`` with a salt per
purpose, so a preferences token cannot be replayed as a confirmation token.
"""

import functools

from django.conf import settings
from django.core import signing

CONFIRM_MAX_AGE = 7 * 24 * 3600


class BadToken(Exception):
    """The link was tampered with, is for another purpose, or is malformed."""


class ExpiredToken(BadToken):
    """The link was genuine but is too old; ``payload`` says for whom."""

    def __init__(self, payload: dict):
        super().__init__("link expired")
        self.payload = payload


def make_token(purpose: str, subscriber_id: int, **extra) -> str:
    """``signing.dumps`` with one signer per purpose: an issue signs a few links per reader,
    and making a signer (settings, key) each time would dominate signing. Payloads are a few numbers,
    too small for compression to shorten; ``read_token`` reads compressed tokens too."""
    return _signer(f"digest.{purpose}", settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS)).sign_object(
        {"s": subscriber_id, **extra}
    )


@functools.lru_cache(maxsize=32)
def _signer(salt: str, key: str, fallback_keys: tuple) -> signing.TimestampSigner:
    return signing.TimestampSigner(key=key, salt=salt, fallback_keys=list(fallback_keys))


def read_token(purpose: str, token: str, *, max_age: int | None = None) -> dict:
    """The payload of a token for ``purpose``; raises BadToken or ExpiredToken."""
    salt = f"digest.{purpose}"
    try:
        return signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        return_payload = signing.loads(token, salt=salt)
        raise ExpiredToken(return_payload) from None
    except (signing.BadSignature, ValueError, TypeError):
        raise BadToken("bad link") from None
