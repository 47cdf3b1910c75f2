"""What the papers app tells the layers above it (they connect receivers; papers
imports none of them)."""

from django.dispatch import Signal

# Sent inside the import's transaction with ``papers``: the new or changed ``Paper``
# rows (saved), and ``earlier_days``: the listing days (``Paper.listing_date``) changed
# papers had before, where the import moved them (a date given for a paper listed by the
# day it was first seen). The ranking stores their embeddings here, so a paper and its embedding
# are committed together; a receiver that raises rolls the import back.
papers_stored = Signal()
