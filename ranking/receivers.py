"""Ranking's answers to what the papers app announces."""

from django.db import transaction
from django.dispatch import receiver

from papers.signals import papers_stored
from ranking import store


@receiver(papers_stored, dispatch_uid="ranking.embed_stored_papers")
def embed_stored_papers(sender, papers, **kwargs):
    store.embed_papers(papers)


@receiver(papers_stored, dispatch_uid="ranking.queue_neighbours")
def queue_neighbours(sender, papers, **kwargs):
    """Once the import commits (with their embeddings), a task finds the stored papers'
    neighbours and offers them to older papers' lists, a batch per task."""
    from ranking import neighbours, tasks

    ids = sorted(p.pk for p in papers if p.pk is not None)
    for start in range(0, len(ids), neighbours.BATCH):
        batch = ids[start : start + neighbours.BATCH]
        transaction.on_commit(lambda batch=batch: tasks.store_neighbours.delay(batch), robust=True)
