"""What the papers app tells the layers above it (they connect receivers; papers
imports none of them)."""

from django.dispatch import Signal

# Sent inside the import's transaction with ``papers``: the new or changed ``Paper``
# rows (saved). The ranking stores their embeddings here, so a paper and its embedding
# are committed together; a receiver that raises rolls the import back.
papers_stored = Signal()
