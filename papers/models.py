from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Paper(models.Model):
    """One paper, whatever feed it came from.

    ``key`` is the arXiv id without version where one is known (``2401.12345``),
    otherwise ``title:<hash of the normalised title>``, so the same paper seen in
    two feeds is stored once.
    """

    key = models.CharField(max_length=80, unique=True)
    arxiv_id = models.CharField(max_length=32, blank=True, db_index=True)
    title = models.TextField()
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True, help_text="Author names, in order.")
    categories = models.JSONField(default=list, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    upvotes = models.IntegerField(default=0)
    comment_count = models.IntegerField(default=0)
    abs_url = models.URLField(max_length=500, blank=True)
    pdf_url = models.URLField(max_length=500, blank=True)
    page_url = models.URLField(max_length=500, blank=True, help_text="The paper page it came from.")
    thumbnail_url = models.URLField(max_length=500, blank=True)
    source = models.CharField(max_length=40, blank=True, help_text="Format it was imported from.")
    # float32 sentence embedding of title + abstract, computed once at import.
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=80, blank=True, editable=False)

    class Meta:
        ordering = ["-first_seen_at", "-upvotes"]
        indexes = [
            models.Index(fields=["first_seen_at"], name="paper_first_seen_idx"),
            models.Index(fields=["-upvotes"], name="paper_upvotes_idx"),
            models.Index(fields=["source", "first_seen_at"], name="paper_source_seen_idx"),
        ]

    def __str__(self):
        return self.title[:100]

    def get_absolute_url(self) -> str:
        return reverse("pages:paper", args=[self.pk])

    @property
    def url(self) -> str:
        """Where a reader should land: the paper page, else the abstract page or PDF,
        else our own page for the paper (papers imported without links)."""
        return self.page_url or self.abs_url or self.pdf_url or settings.SITE_URL + self.get_absolute_url()


class ImportRun(models.Model):
    """One import of one source, kept for the dashboard and for operators."""

    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        FAILED = "failed"

    source = models.CharField(max_length=500, help_text="File path or URL.")
    format = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["source", "-started_at"], name="importrun_source_idx")]

    def __str__(self):
        return f"{self.source} {self.status} {self.started_at:%Y-%m-%d %H:%M}"
