from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone

from papers.importers.normalise import title_key


def is_web_link(url: str) -> bool:
    return (url or "").lower().startswith(("https://", "http://"))


def listing_day():
    """The day a paper is listed under on the public site: the day it was announced, else
    (a source that gives no date) the day it was first seen, in the site's time zone.
    An expression, indexed as it is written here: a query that filters or orders by it
    uses ``paper_listing_day_idx``. (The index holds the time zone of the migration; under
    another ``TIME_ZONE`` the queries stay right but do not use it.)"""
    return Coalesce("announced_on", TruncDate("first_seen_at"), output_field=models.DateField())


def listing_day_sql(connection) -> tuple[str, list]:
    """``listing_day()`` as SQL with its params, columns unqualified (``FROM papers_paper``
    without an alias), for queries written in SQL: as the index has it, so they use it."""
    key = (connection.vendor, timezone.get_current_timezone_name())
    if key not in _LISTING_DAY_SQL:
        query = Paper.objects.all().query
        sql, params = (
            listing_day().resolve_expression(query).as_sql(query.get_compiler(connection=connection), connection)
        )
        _LISTING_DAY_SQL[key] = (sql.replace(f'"{Paper._meta.db_table}".', ""), tuple(params))
    sql, params = _LISTING_DAY_SQL[key]
    return sql, list(params)


_LISTING_DAY_SQL: dict[tuple, tuple] = {}


class Paper(models.Model):
    """One paper, whatever feed it came from.

    ``key`` is the arXiv id without version where one is known (``2401.12345``), else
    ``doi:<DOI>``, else ``title:<hash of the normalised title>``. An import matches a
    paper by any of the three (``doi``, ``title_key``), so the same paper from a source
    with an id and from one without is one row; its key becomes the strongest it has.
    """

    key = models.CharField(max_length=80, unique=True)
    arxiv_id = models.CharField(max_length=32, blank=True, db_index=True)
    # Database defaults too: bulk loaders that write rows with SQL (bench/) need not know them.
    doi = models.CharField(
        max_length=200, blank=True, default="", db_default="", db_index=True, help_text="Lower-cased DOI."
    )
    title_key = models.CharField(
        max_length=40,
        blank=True,
        default="",
        db_default="",
        db_index=True,
        editable=False,
        help_text="``title:<hash>`` of the normalised title.",
    )
    title = models.TextField()
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True, help_text="Author names, in order.")
    categories = models.JSONField(default=list, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # The day the paper was announced or listed (arXiv's announcement, a daily list, a
    # page's date heading): it dates the paper, and a later import never moves it.
    announced_on = models.DateField(null=True, blank=True, db_index=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    upvotes = models.IntegerField(default=0)
    comment_count = models.IntegerField(default=0)
    abs_url = models.URLField(max_length=500, blank=True)
    pdf_url = models.URLField(max_length=500, blank=True)
    page_url = models.URLField(max_length=500, blank=True, help_text="The paper page it came from.")
    thumbnail_url = models.URLField(max_length=500, blank=True)
    source = models.CharField(max_length=40, blank=True, help_text="Format it was imported from.")

    class Meta:
        ordering = ["-first_seen_at", "-upvotes"]
        indexes = [
            models.Index(fields=["first_seen_at"], name="paper_first_seen_idx"),
            models.Index(fields=["-upvotes"], name="paper_upvotes_idx"),
            models.Index(fields=["source", "first_seen_at"], name="paper_source_seen_idx"),
            models.Index(listing_day(), models.F("upvotes").desc(), name="paper_listing_day_idx"),
        ]

    def __str__(self):
        return self.title[:100]

    def save(self, *args, **kwargs):
        """Papers made outside the importers (admin, fixtures) are found by title too."""
        if not self.title_key:
            self.title_key = title_key(self.title)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("pages:paper", args=[self.pk])

    def listing_date(self):
        """``listing_day()`` of this paper, in Python."""
        return self.announced_on or timezone.localtime(self.first_seen_at).date()

    @property
    def url(self) -> str:
        """Where a reader should land: the paper page, else the abstract page or PDF,
        else our own page for the paper. Only http(s) links: an imported ``javascript:``
        URL never reaches a page or a mailbox."""
        for link in (self.page_url, self.abs_url, self.pdf_url):
            if is_web_link(link):
                return link
        return settings.SITE_URL + self.get_absolute_url()


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
    skipped = models.IntegerField(
        default=0, db_default=0, help_text="Entries without a title, and replacements of unknown papers."
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["source", "-started_at"], name="importrun_source_idx")]

    def __str__(self):
        return f"{self.source} {self.status} {self.started_at:%Y-%m-%d %H:%M}"
