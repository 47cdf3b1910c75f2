"""Ranking's answers to what the papers app announces."""

from django.dispatch import receiver

from papers.signals import papers_stored
from ranking import store


@receiver(papers_stored, dispatch_uid="ranking.embed_stored_papers")
def embed_stored_papers(sender, papers, **kwargs):
    store.embed_papers(papers)
