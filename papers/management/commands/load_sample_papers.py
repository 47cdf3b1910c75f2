"""``manage.py load_sample_papers``: the bundled sample papers, dated as recent (idempotent)."""

from django.core.management.base import BaseCommand

from papers import services


class Command(BaseCommand):
    help = "Load the bundled sample papers and date them within the last few days (safe to run again)."

    def handle(self, *args, **options):
        result = services.load_sample_papers()
        self.stdout.write(f"sample papers: {result}")
