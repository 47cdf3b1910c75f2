from django.db import models
from django.utils import timezone as dj_timezone


class Topic(models.Model):
    """A topic query in plain words, stored once however many people follow it.

    ``query`` is the normalised form (see ``subscriptions.services.normalise_topic``).
    """

    query = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["query"]

    def __str__(self):
        return self.query


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        PAUSED = "paused"
        UNSUBSCRIBED = "unsubscribed"
        BOUNCED = "bounced"

    class Frequency(models.TextChoices):
        WEEKLY = "weekly"
        DAILY = "daily"

    email = models.EmailField(max_length=254, unique=True, help_text="Stored lower-cased.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.WEEKLY)
    weekday = models.PositiveSmallIntegerField(default=0, help_text="0 = Monday; weekly mail only.")
    send_hour = models.PositiveSmallIntegerField(default=8, help_text="Local hour of day, 0-23.")
    timezone = models.CharField(max_length=64, default="UTC")
    authors = models.JSONField(default=list, blank=True, help_text="Followed author names.")
    example_paper_ids = models.JSONField(
        default=list, blank=True, help_text="Papers given as examples of what they want (paper ids): more like these."
    )
    topics = models.ManyToManyField(Topic, through="Subscription", related_name="subscribers")
    created_at = models.DateTimeField(default=dj_timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    suppressed_at = models.DateTimeField(null=True, blank=True)
    suppression_reason = models.CharField(max_length=200, blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    # The mail server's last refusal of the confirmation email (empty once one went out):
    # shown on the dashboard and retried hourly (subscriptions.tasks.retry_failed_confirmations).
    confirmation_error = models.TextField(blank=True)
    confirmation_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "frequency"], name="subscriber_due_idx"),
            models.Index(fields=["created_at"], name="subscriber_created_idx"),
        ]

    def __str__(self):
        return self.email


class Subscription(models.Model):
    """A subscriber follows a topic."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="subscriptions")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="subscriptions")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "topic"], name="uniq_subscription")]

    def __str__(self):
        return f"{self.subscriber} → {self.topic}"


class Feedback(models.Model):
    """A 👍 (+1) or 👎 (-1) on a paper from a digest; the latest vote counts."""

    class Vote(models.IntegerChoices):
        UP = 1, "👍"
        DOWN = -1, "👎"

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="feedback")
    paper = models.ForeignKey("papers.Paper", on_delete=models.CASCADE, related_name="feedback")
    topic = models.ForeignKey(Topic, on_delete=models.SET_NULL, null=True, blank=True, related_name="feedback")
    vote = models.SmallIntegerField(choices=Vote.choices)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "paper"], name="uniq_feedback")]

    def __str__(self):
        return f"{self.subscriber} {self.get_vote_display()} {self.paper_id}"
