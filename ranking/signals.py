"""What the ranking tells the layers above it (they connect receivers)."""

from django.dispatch import Signal

# Sent with ``paper_ids`` after these papers' neighbour lists (and the older lists they
# entered) are stored: pages that show similar papers have changed.
neighbours_stored = Signal()
