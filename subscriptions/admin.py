"""Subscribers, topics and feedback for operators. List pages run a fixed number of
queries (counts are annotated, related rows joined); actions call the services."""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from subscriptions import notices, services
from subscriptions.models import Feedback, Subscriber, Subscription, Topic


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    autocomplete_fields = ["topic"]
    fields = ["topic", "created_at"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("topic")


class FeedbackInline(admin.TabularInline):
    """The reader's 👍/👎, with the topic section each was given in: what their
    ranking learns from (read-only: a vote is the reader's own)."""

    model = Feedback
    extra = 0
    fields = ["created_at", "vote", "paper", "topic"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("paper", "topic", "subscriber")


def _run(service, verb):
    def action(modeladmin, request, queryset):
        changed = sum(1 for subscriber in queryset if service(subscriber))
        modeladmin.message_user(request, f"{verb}: {changed} subscriber(s).", messages.SUCCESS)

    action.__name__ = f"{service.__name__}_selected"
    action.short_description = f"{verb} selected subscribers"
    return action


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "status",
        "frequency",
        "schedule",
        "topic_count",
        "created_at",
        "confirmed_at",
        "next_digest",
    ]
    list_filter = ["status", "frequency"]
    search_fields = ["email", "topics__query"]
    date_hierarchy = "created_at"
    inlines = [SubscriptionInline, FeedbackInline]
    readonly_fields = ["created_at", "confirmed_at", "unsubscribed_at", "confirmation_sent_at"]
    actions = [
        _run(services.pause, "Paused"),
        _run(services.resume, "Resumed"),
        _run(services.unsubscribe, "Unsubscribed"),
        _run(services.resend_confirmation, "Confirmation re-sent to pending"),
    ]
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(topic_count=Count("subscriptions", distinct=True))

    def save_model(self, request, obj, form, change):
        obj.email = obj.email.strip().lower()  # one row per address, as signup stores it
        super().save_model(request, obj, form, change)

    @admin.display(description="Topics", ordering="topic_count")
    def topic_count(self, obj):
        return obj.topic_count

    @admin.display(description="Next digest")
    def next_digest(self, obj):
        """Links to the dashboard's preview and send-test actions for this subscriber."""
        query = urlencode({"subscriber": obj.email})
        return format_html(
            '<a href="{}?{}">Preview</a> · <a href="{}?{}">Send test</a>',
            reverse("dashboard:preview"),
            query,
            reverse("dashboard:send_test"),
            query,
        )

    @admin.display(description="Sends")
    def schedule(self, obj):
        return notices.describe_schedule(obj)


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["query", "subscriber_count", "active_subscriber_count", "created_at"]
    search_fields = ["query"]
    readonly_fields = ["query", "created_at"]
    fields = ["query", "created_at"]
    list_per_page = 100

    def has_add_permission(self, request):
        # Topics come from subscribers' own words, normalised by the signup service.
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                subscriber_count=Count("subscriptions", distinct=True),
                active_subscriber_count=Count(
                    "subscriptions",
                    filter=Q(subscriptions__subscriber__status=Subscriber.Status.ACTIVE),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="Subscribers", ordering="subscriber_count")
    def subscriber_count(self, obj):
        return obj.subscriber_count

    @admin.display(description="Active", ordering="active_subscriber_count")
    def active_subscriber_count(self, obj):
        return obj.active_subscriber_count


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["created_at", "vote", "paper_title", "topic", "subscriber"]
    list_filter = ["vote", "created_at"]
    list_select_related = ["paper", "topic", "subscriber"]
    search_fields = ["subscriber__email", "paper__title", "topic__query"]
    raw_id_fields = ["subscriber", "paper", "topic"]
    date_hierarchy = "created_at"

    @admin.display(description="Paper", ordering="paper__title")
    def paper_title(self, obj):
        return obj.paper.title[:120]
