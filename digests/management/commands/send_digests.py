from django.core.management.base import BaseCommand

from digests import dispatch, tasks


class Command(BaseCommand):
    help = (
        "Run the digest dispatcher now: create the deliveries that are due and enqueue them "
        "(the hourly beat task does the same). Safe to repeat: nobody gets a second copy."
    )

    def add_arguments(self, parser):
        parser.add_argument("--frequency", choices=["weekly", "daily"], help="Only this frequency.")
        parser.add_argument(
            "--now", action="store_true", help="Treat every active subscriber as due for their current period."
        )

    def handle(self, *args, frequency=None, now=False, **options):
        result = dispatch.dispatch_due(enqueue=tasks.enqueue_deliveries, frequency=frequency, force=now)
        issues = ", ".join(result.issues) or "none"
        self.stdout.write(
            f"Issues: {issues}. Deliveries created: {result.created}, re-enqueued: {result.rescued}, "
            f"enqueued: {result.enqueued} in {result.batches} batch(es)."
        )
