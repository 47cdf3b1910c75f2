"""``manage.py store_neighbours``: the similar papers of every embedded paper that has none
stored (after an upgrade, or an import whose task could not run), batch by batch."""

from django.core.management.base import BaseCommand

from ranking import neighbours


class Command(BaseCommand):
    help = "Find and store the nearest papers of embedded papers that have no list yet."

    def handle(self, *args, **options):
        total, after = 0, 0
        while batch := neighbours.missing(after=after):
            neighbours.update(batch)
            total, after = total + len(batch), batch[-1]
            self.stdout.write(f"{total} papers")
        self.stdout.write(self.style.SUCCESS(f"neighbours stored for {total} papers"))
