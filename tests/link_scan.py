"""What a mail scanner sees of a message, and the rows it must not change (shared by the
link-scanner tests of e2e and digests)."""

import re

from bs4 import BeautifulSoup

from digests.models import Delivery
from subscriptions.models import Feedback, Subscriber, Subscription, Topic


def links_in(message) -> set[str]:
    """Every URL of a message: its text part, its HTML part and its List-Unsubscribe header."""
    found = set(re.findall(r"https?://[^\s<>\"']+", message.body))
    for html, _type in getattr(message, "alternatives", []):
        found |= {a["href"] for a in BeautifulSoup(html, "html.parser").find_all(href=True)}
    found |= set(re.findall(r"<(https?://[^>]+)>", message.extra_headers.get("List-Unsubscribe", "")))
    return found


def database_state():
    return (
        list(Subscriber.objects.order_by("id").values()),
        list(Feedback.objects.order_by("id").values()),
        list(Topic.objects.order_by("id").values()),
        list(Subscription.objects.order_by("id").values()),
        list(Delivery.objects.order_by("id").values()),
    )
