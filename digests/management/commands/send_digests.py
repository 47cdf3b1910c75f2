import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from digests import delivery, dispatch, tasks
from digests.models import Delivery

Status = Delivery.Status


class Command(BaseCommand):
    help = (
        "Run the digest dispatcher now: create the deliveries that are due and send them "
        "(the hourly beat task does the same). Safe to repeat: nobody gets a second copy. "
        "Prints how many were sent, deferred and failed, and exits with status 1 when some "
        "remain undelivered (in-process, or with --wait)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--frequency", choices=["weekly", "daily"], help="Only this frequency.")
        parser.add_argument(
            "--now", action="store_true", help="Treat every active subscriber as due for their current period."
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="With Celery workers: wait up to this long for them to settle the rows, then report "
            "(in-process tasks always finish before the command does).",
        )

    def handle(self, *args, frequency=None, now=False, wait=0.0, **options):
        enqueued: list[int] = []

        def enqueue(ids: list[int]) -> int:
            enqueued.extend(ids)
            return tasks.enqueue_deliveries(ids)

        in_process = settings.CELERY_TASK_ALWAYS_EAGER
        # In-process there is no task that could still hold a queued row: --now sends them all.
        result = dispatch.dispatch_due(
            enqueue=enqueue, frequency=frequency, force=now, rescue_all_queued=in_process and now
        )
        issues = ", ".join(result.issues) or "none"
        self.stdout.write(
            f"Issues: {issues}. Deliveries created: {result.created}, re-enqueued: {result.rescued}, "
            f"enqueued: {result.enqueued} in {result.batches} batch(es)."
        )
        if in_process:  # nobody else comes back for deferred rows: this run does, with the usual backoff
            delivery.deliver_deferred(enqueued, rounds=tasks.BATCH_MAX_RETRIES)
        elif wait <= 0:
            self.stdout.write("Handed to the Celery workers (--wait SECONDS to wait for their outcome).")
            return
        counts = _settled_counts(enqueued, wait=0 if in_process else wait)
        self.stdout.write(
            f"Sent: {counts['sent']}, deferred: {counts['deferred']}, failed: {counts['failed']}, "
            f"suppressed: {counts['suppressed']}, skipped: {counts['skipped']}, "
            f"held by a paused issue: {counts['paused']}."
        )
        undelivered = counts["deferred"] + counts["failed"] + counts["paused"]
        if undelivered:
            raise CommandError(
                f"{undelivered} of {len(enqueued)} deliveries remain undelivered "
                "(see the dashboard for their last errors)",
                returncode=1,
            )


def _settled_counts(ids: list[int], *, wait: float) -> dict[str, int]:
    """What became of these rows, once none is in flight or ``wait`` seconds have passed."""
    rows = Delivery.objects.filter(id__in=ids)
    deadline = time.monotonic() + wait
    while wait and rows.filter(status__in=[Status.QUEUED, Status.SENDING]).exists() and time.monotonic() < deadline:
        time.sleep(1.0)
    counts = dict.fromkeys(["sent", "deferred", "failed", "suppressed", "skipped", "paused"], 0)
    for status, paused, count in _by_status(rows):
        if status in (Status.QUEUED, Status.SENDING):
            counts["paused" if paused else "deferred"] += count
        else:
            counts[status] += count
    return counts


def _by_status(rows):
    grouped = rows.values("status").annotate(
        all=Count("id"), paused=Count("id", filter=Q(issue__paused_at__isnull=False))
    )
    for group in grouped:
        if group["paused"]:
            yield group["status"], True, group["paused"]
        if group["all"] > group["paused"]:
            yield group["status"], False, group["all"] - group["paused"]
