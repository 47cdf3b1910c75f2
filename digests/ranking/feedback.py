"""Signed 👍/👎 links in each digest: one click, no login.

A vote moves that subscriber's future ranking (see ``ranker._FeedbackSimilarity``):
papers like the liked ones rise, papers like the disliked ones sink.
"""

from django.utils import timezone

from subscriptions.links import absolute_url
from subscriptions.tokens import make_token


def feedback_links(subscriber_id: int, paper_id: int, topic_id: int | None = None) -> tuple[str, str]:
    """Absolute (up_url, down_url) for one paper in one subscriber's digest."""
    urls = []
    for vote in (1, -1):
        token = make_token("feedback", subscriber_id, p=paper_id, v=vote, t=topic_id)
        urls.append(absolute_url("ranking:feedback", token))
    return urls[0], urls[1]


def record_vote(*, subscriber_id: int, paper_id: int, vote: int, topic_id: int | None = None):
    """Store a subscriber's vote on a paper; the latest vote replaces any earlier one,
    so recording the same vote twice changes nothing."""
    from subscriptions.models import Feedback, Topic

    if vote not in (Feedback.Vote.UP, Feedback.Vote.DOWN):
        raise ValueError(f"vote must be 1 or -1, not {vote!r}")
    if topic_id is not None and not Topic.objects.filter(id=topic_id).exists():
        topic_id = None  # the topic was removed since the email went out
    feedback, _ = Feedback.objects.update_or_create(
        subscriber_id=subscriber_id,
        paper_id=paper_id,
        defaults={"vote": vote, "topic_id": topic_id, "created_at": timezone.now()},
    )
    return feedback
