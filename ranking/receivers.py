"""Ranking's answers to what the papers app announces."""

from django.db import transaction
from django.dispatch import receiver

from papers.signals import papers_stored
from ranking import store


@receiver(papers_stored, dispatch_uid="ranking.embed_stored_papers")
def embed_stored_papers(sender, papers, **kwargs):
    """Embed the new and rewritten papers inside the import's transaction; once it commits,
    a task finds their neighbours and offers them to older papers' lists (a batch of
    ``neighbours.BATCH`` per task). Papers whose text did not change (new upvotes) keep
    their place among the neighbours: no task for them."""
    from ranking import neighbours, tasks

    ids = sorted(store.embed_changed_papers(papers))
    for start in range(0, len(ids), neighbours.BATCH):
        batch = ids[start : start + neighbours.BATCH]
        transaction.on_commit(lambda batch=batch: tasks.store_neighbours.delay(batch), robust=True)
