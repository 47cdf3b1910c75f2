"""The kept public pages go out of date when what they show changes (``pages.cache``)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from pages import cache
from papers.models import Paper
from papers.signals import papers_stored
from ranking.signals import neighbours_stored


@receiver(papers_stored, dispatch_uid="pages.papers_stored")
def papers_imported(sender, papers, **kwargs):
    """New papers, and known ones with new upvotes or text, from an import."""
    cache.bump_on_commit()


@receiver(post_save, sender=Paper, dispatch_uid="pages.paper_saved")
@receiver(post_delete, sender=Paper, dispatch_uid="pages.paper_deleted")
def paper_changed(sender, **kwargs):
    """A paper saved or deleted one at a time (the admin, a fixture)."""
    cache.bump_on_commit()


@receiver(neighbours_stored, dispatch_uid="pages.neighbours_stored")
def neighbours_changed(sender, **kwargs):
    """Papers' similar papers were found (after an import, in a task)."""
    cache.bump_on_commit()
