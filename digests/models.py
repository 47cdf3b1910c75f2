from django.db import models
from django.utils import timezone

# One permission per dashboard action (least privilege); the "Digest operators" group
# (migration 0006) holds them all. They hang on Issue because a permission needs a model.
OPERATOR_PERMISSIONS = [
    ("preview_digest", "Can preview a subscriber's next digest"),
    ("send_test_digest", "Can send a test digest to any address"),
    ("dispatch_digests", "Can send the due digests now"),
    ("retry_deliveries", "Can retry failed deliveries"),
    ("import_papers", "Can import papers"),
    ("suppress_address", "Can suppress an address"),
    ("restore_address", "Can restore a suppressed address"),
    ("import_subscribers", "Can import subscribers from a CSV file"),
    ("export_subscribers", "Can export subscribers and issues' send records"),
]
OPERATORS_GROUP = "Digest operators"


class Issue(models.Model):
    """One edition per frequency and period, e.g. weekly ``2026-W48`` or daily ``2026-11-26``."""

    class Frequency(models.TextChoices):
        WEEKLY = "weekly"
        DAILY = "daily"

    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    period = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    # The circuit breaker (digests.breaker): set when the same permanent refusal keeps
    # coming back; nothing of the issue is sent until an operator resumes it.
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["frequency", "period"], name="uniq_issue_period")]
        permissions = OPERATOR_PERMISSIONS

    def __str__(self):
        return f"{self.frequency} {self.period}"

    @property
    def label(self) -> str:
        """The period as a reader says it: "week of 23 November 2026" or "Thursday 26 November 2026"."""
        from digests.schedule import period_label

        return period_label(self.frequency, self.period)


class Delivery(models.Model):
    """One subscriber's copy of one issue; the row that makes each send happen once."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"
        SUPPRESSED = "suppressed"

    # No index of their own: uniq_delivery (subscriber, issue) and delivery_issue_status_idx
    # (issue, status) start with them, and every index costs each of a send's UPDATEs.
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    subscriber = models.ForeignKey(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    paper_ids = models.JSONField(default=list, blank=True, help_text="Papers this copy carries, in order.")
    items = models.JSONField(
        default=list,
        blank=True,
        help_text="What the copy showed for each paper (paper id, topic, why), so its web version matches the email.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    handed_over = models.BooleanField(
        default=False,
        help_text="Claimed with the whole message already at the SMTP server, only the final dot to go: "
        "if the worker dies now the message is counted as sent, never sent twice.",
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["subscriber", "issue"], name="uniq_delivery")]
        indexes = [
            models.Index(fields=["issue", "status"], name="delivery_issue_status_idx"),
            models.Index(fields=["status", "updated_at"], name="delivery_status_idx"),
        ]

    def __str__(self):
        return f"{self.issue} → {self.subscriber_id} ({self.status})"
