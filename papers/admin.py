"""Admin for papers and import runs. Paper and ImportRun have no foreign keys, so the
list pages need no ``list_select_related``; every value is shown escaped."""

from django.contrib import admin
from django.db import models
from django.utils.html import format_html
from django.utils.text import Truncator

from papers.models import ImportRun, Paper


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = ("short_title", "key", "first_author", "upvotes", "comment_count", "source", "first_seen_at")
    list_filter = (
        "source",
        ("first_seen_at", admin.DateFieldListFilter),
        ("announced_on", admin.DateFieldListFilter),
        ("published_at", admin.DateFieldListFilter),
    )
    search_fields = ("title", "authors", "key", "arxiv_id", "doi")
    date_hierarchy = "first_seen_at"
    ordering = ("-first_seen_at", "-upvotes")
    readonly_fields = ("first_seen_at", "updated_at", "link")
    list_per_page = 50
    show_full_result_count = False
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="title", ordering="title")
    def short_title(self, paper):
        return Truncator(paper.title).chars(90)

    @admin.display(description="first author")
    def first_author(self, paper):
        return paper.authors[0] if paper.authors else ""

    @admin.display(description="link")
    def link(self, paper):
        return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', paper.url, paper.url) if paper.url else ""


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = (
        "source",
        "format",
        "status",
        "started_at",
        "finished_at",
        "created",
        "updated",
        "unchanged",
        "skipped",
        "short_error",
    )
    list_filter = ("status", "format", ("started_at", admin.DateFieldListFilter))
    search_fields = ("source", "error")
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in ImportRun._meta.fields]

    @admin.display(description="error")
    def short_error(self, run):
        return Truncator(run.error).chars(120)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
