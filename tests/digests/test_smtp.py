"""digests.smtp: the envelope of a message, as Django's SMTP backend would make it."""

import pytest
from django.core.mail import EmailMessage
from django.core.mail.message import sanitize_address

from digests import smtp


@pytest.mark.parametrize(
    "to",
    [
        "reader@example.org",
        "o'brien+digest@mail.example.org",
        "Zoë Reader <zoe@example.org>",
        "zoë@example.org",
        "reader@exämple.org",
        '"quoted local"@example.org',
    ],
)
@pytest.mark.parametrize("sender", ["digest@example.org", "Paper Digest <digest@example.org>", "Zoë <z@example.org>"])
def test_the_envelope_is_what_django_would_send(sender, to):
    message = EmailMessage(subject="s", body="b", from_email=sender, to=[to])
    assert smtp.envelope(message) == (sanitize_address(sender, "utf-8"), [sanitize_address(to, "utf-8")])


def test_an_address_django_refuses_is_refused():
    message = EmailMessage(subject="s", body="b", from_email="digest@example.org", to=["not an address@@x"])
    with pytest.raises(ValueError):
        smtp.envelope(message)
