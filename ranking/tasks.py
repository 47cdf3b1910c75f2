"""Thin tasks of the ranking."""

from celery import shared_task

from ranking import api


@shared_task(name="ranking.tasks.store_topic_embeddings")
def store_topic_embeddings(queries):
    """New topics get their sentence embeddings now, not while an issue is being ranked."""
    return api.store_topic_embeddings(queries)


@shared_task(name="ranking.tasks.store_neighbours")
def store_neighbours(paper_ids):
    """Stored papers' similar papers, found once after their import, not on every page view."""
    return api.store_neighbours(paper_ids)
