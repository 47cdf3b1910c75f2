"""Signed 👍/👎 links in each digest: one click, no login."""

from django.conf import settings
from django.urls import reverse

from subscriptions.tokens import make_token


def feedback_links(subscriber_id: int, paper_id: int, topic_id: int | None = None) -> tuple[str, str]:
    """Absolute (up_url, down_url) for one paper in one subscriber's digest."""
    urls = []
    for vote in (1, -1):
        token = make_token("feedback", subscriber_id, p=paper_id, v=vote, t=topic_id)
        urls.append(settings.SITE_URL + reverse("ranking:feedback", args=[token]))
    return urls[0], urls[1]
