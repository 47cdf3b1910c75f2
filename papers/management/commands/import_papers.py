"""``manage.py import_papers SOURCE [--format ...]``: import a file path or URL once."""

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from papers import importers, services

PROGRESS_FROM = 1000  # papers; smaller imports finish before a bar would help


class Command(BaseCommand):
    help = "Import papers from a file path or an http(s) URL; prints created/updated/unchanged counts."

    def add_arguments(self, parser):
        parser.add_argument("source", help="A file path or an http(s) URL.")
        parser.add_argument(
            "--format",
            dest="fmt",
            default="auto",
            choices=["auto", *importers.FORMATS],
            help="Feed format; detected from the content when 'auto' (the default).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Never show a progress bar.")

    def handle(self, *args, source, fmt, no_progress, **options):
        def progress(total):
            return tqdm(
                total=total,
                unit="paper",
                desc="importing",
                file=sys.stderr,
                disable=no_progress or total < PROGRESS_FROM,
            )

        try:
            result = services.import_source(source, fmt=fmt, progress=progress)
        except services.ImportFailed as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(result))
