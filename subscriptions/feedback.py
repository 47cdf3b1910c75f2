"""A reader's 👍/👎 on a paper: stored here, given to the ranking as liked and
disliked paper ids, where papers like the liked ones rise and like the disliked sink.
"""

from django.utils import timezone

from subscriptions.models import Feedback, Topic

VOTES = {"up": 1, "down": -1}


def record_vote(*, subscriber_id: int, paper_id: int, vote: int, topic_id: int | None = None):
    """Store a subscriber's vote on a paper; the latest vote replaces any earlier one,
    so recording the same vote twice changes nothing."""

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
