"""Signed 👍/👎 links in each digest: one click, no login.

A vote moves that subscriber's future ranking (see ``ranker._FeedbackSimilarity``):
papers like the liked ones rise, papers like the disliked ones sink.
"""

from django.utils import timezone

from subscriptions.links import absolute_url
from subscriptions.tokens import make_token

VOTES = {"up": 1, "down": -1}


class FeedbackLinks:
    """The 👍/👎 links of one subscriber's digest.

    One signed token says whose votes they are; the paper, its topic and the vote are
    plain in the path (``/f/<token>/<paper>/<topic or 0>/<up|down>/``, the ``ranking:vote``
    URL). A token per link made signing a tenth of the CPU of sending a digest. Whoever
    holds the digest could already vote on its papers, and a vote only moves that
    subscriber's own ranking, so a vote on another paper gains nothing; the preferences
    link beside these gives its holder more than that.
    """

    def __init__(self, subscriber_id: int):
        self._prefix = absolute_url("ranking:feedback", make_token("feedback", subscriber_id))

    def of(self, paper_id: int, topic_id: int | None = None) -> tuple[str, str]:
        """Absolute (up_url, down_url) for one paper."""
        stem = f"{self._prefix}{paper_id}/{topic_id or 0}/"
        return f"{stem}up/", f"{stem}down/"


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
