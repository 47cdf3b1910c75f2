"""Issues and deliveries for operators; every action calls a service, after a
confirmation page that says how many people it touches."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, Q
from django.template.response import TemplateResponse

from digests import dispatch, tasks
from digests.models import Delivery, Issue
from subscriptions import suppression
from subscriptions.models import Subscriber

Status = Delivery.Status


class OperatorActions:
    """Admin actions need the same permissions as the dashboard's (``OPERATOR_PERMISSIONS``)."""

    def has_retry_deliveries_permission(self, request):
        return request.user.has_perm("digests.retry_deliveries")

    def has_suppress_address_permission(self, request):
        return request.user.has_perm("digests.suppress_address")

    def has_restore_address_permission(self, request):
        return request.user.has_perm("digests.restore_address")

    def ask_first(self, request, queryset, question: str, button: str):
        """The confirmation page of a bulk action; None once the operator said yes."""
        if request.POST.get("post") == "yes":
            return None
        return TemplateResponse(
            request,
            "admin/digests/bulk_confirm.html",
            {
                **self.admin_site.each_context(request),
                "title": "Are you sure?",
                "question": question,
                "button": button,
                "action": request.POST.get("action", ""),
                "selected": queryset.values_list("pk", flat=True),
                "select_across": request.POST.get("select_across", "0"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )


def _people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"


@admin.register(Issue)
class IssueAdmin(OperatorActions, admin.ModelAdmin):
    list_display = ("__str__", "created_at", "sent", "queued", "failed", "skipped", "suppressed")
    list_filter = ("frequency",)
    search_fields = ("period",)
    actions = ("retry_failed_deliveries",)

    def get_queryset(self, request):
        counts = {
            status: Count("deliveries", filter=Q(deliveries__status=status))
            for status in (Status.SENT, Status.QUEUED, Status.FAILED, Status.SKIPPED, Status.SUPPRESSED)
        }
        return super().get_queryset(request).annotate(**{f"n_{k}": v for k, v in counts.items()})

    @admin.display(ordering="n_sent")
    def sent(self, obj):
        return obj.n_sent

    @admin.display(ordering="n_queued")
    def queued(self, obj):
        return obj.n_queued

    @admin.display(ordering="n_failed")
    def failed(self, obj):
        return obj.n_failed

    @admin.display(ordering="n_skipped")
    def skipped(self, obj):
        return obj.n_skipped

    @admin.display(ordering="n_suppressed")
    def suppressed(self, obj):
        return obj.n_suppressed

    @admin.action(description="Retry failed deliveries of the selected issues", permissions=["retry_deliveries"])
    def retry_failed_deliveries(self, request, queryset):
        failed = Delivery.objects.filter(
            issue__in=queryset, status=Status.FAILED, subscriber__status=Subscriber.Status.ACTIVE
        ).count()
        question = (
            f"Send the failed deliveries of {queryset.count():,} issue(s) again? {_people(failed)} will get mail now."
        )
        if asked := self.ask_first(request, queryset, question, "Yes, send again"):
            return asked
        total = sum(dispatch.retry_failed(issue, enqueue=tasks.enqueue_deliveries) for issue in queryset)
        self.message_user(request, f"{total} failed deliveries queued again.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(OperatorActions, admin.ModelAdmin):
    list_display = ("id", "issue", "subscriber", "status", "attempts", "sent_at", "short_error")
    list_filter = ("status", "issue__frequency", "issue")
    list_select_related = ("issue", "subscriber")
    search_fields = ("subscriber__email", "message_id")
    raw_id_fields = ("issue", "subscriber")
    readonly_fields = ("claimed_at", "sent_at", "updated_at", "created_at", "message_id", "paper_ids", "items")
    date_hierarchy = "created_at"
    actions = ("retry_selected_failed", "suppress_addresses", "restore_addresses")

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.action(description="Retry the selected failed deliveries", permissions=["retry_deliveries"])
    def retry_selected_failed(self, request, queryset):
        failed = queryset.filter(status=Status.FAILED, subscriber__status=Subscriber.Status.ACTIVE).count()
        question = f"Send {failed:,} failed deliveries again? {_people(failed)} will get mail now."
        if asked := self.ask_first(request, queryset, question, "Yes, send again"):
            return asked
        selected = list(queryset.filter(status=Status.FAILED).values_list("id", flat=True))
        issues = Issue.objects.filter(deliveries__id__in=selected).distinct()
        total = sum(
            dispatch.retry_failed(issue, enqueue=tasks.enqueue_deliveries, delivery_ids=selected) for issue in issues
        )
        self.message_user(request, f"{total} failed deliveries queued again.", messages.SUCCESS)

    @admin.action(description="Suppress the addresses of the selected deliveries", permissions=["suppress_address"])
    def suppress_addresses(self, request, queryset):
        reached = Subscriber.objects.filter(deliveries__in=queryset).exclude(
            status__in=[Subscriber.Status.BOUNCED, Subscriber.Status.UNSUBSCRIBED]
        )
        question = (
            f"Suppress the addresses of these deliveries? {_people(reached.distinct().count())} will get no more mail."
        )
        if asked := self.ask_first(request, queryset, question, "Yes, suppress"):
            return asked
        emails = set(queryset.values_list("subscriber__email", flat=True))
        who = request.user.get_username()
        total = sum(suppression.suppress_address(email, reason=f"suppressed by {who}") for email in emails)
        self.message_user(request, f"{total} addresses suppressed.", messages.SUCCESS)

    @admin.action(description="Restore the addresses of the selected deliveries", permissions=["restore_address"])
    def restore_addresses(self, request, queryset):
        suppressed = Subscriber.objects.filter(deliveries__in=queryset, status=Subscriber.Status.BOUNCED)
        question = (
            f"Restore the addresses of these deliveries? {_people(suppressed.distinct().count())} will get mail again."
        )
        if asked := self.ask_first(request, queryset, question, "Yes, restore"):
            return asked
        emails = set(queryset.values_list("subscriber__email", flat=True))
        total = sum(suppression.restore_address(email) for email in emails)
        self.message_user(request, f"{total} addresses restored.", messages.SUCCESS)
