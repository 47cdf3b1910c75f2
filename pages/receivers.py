"""The kept public pages go out of date when what they show changes (``pages.cache``)."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from pages import cache, day_marks, selectors
from papers.models import Paper
from papers.signals import papers_stored
from ranking.signals import neighbours_stored

logger = logging.getLogger(__name__)
MAX_IDS_LOOKED_UP = 5000  # a bigger import (a backfill) marks every day


@receiver(papers_stored, dispatch_uid="pages.papers_stored")
def papers_imported(sender, papers, earlier_days=(), **kwargs):
    """New papers, and known ones with new upvotes or text, from an import: once it commits,
    the pages of their days (as committed: a command may date them after the import, in
    its transaction) and of the days they left go out of date, and the pages of the days
    beside those, whose links to the day before and after may now lead elsewhere."""
    ids, earlier = [paper.pk for paper in papers], set(earlier_days)
    transaction.on_commit(lambda: cache.bump(_changed_days(ids, earlier)), robust=True)


def _changed_days(ids: list[int], earlier: set) -> set:
    """The days to mark for an import of the papers ``ids``; every day when they are too
    many to say, or the database cannot tell (the pages are then made again, never kept
    out of date)."""
    if len(ids) > MAX_IDS_LOOKED_UP:
        return {day_marks.ALL}
    try:
        days = selectors.listing_days(ids) | earlier
        return days | selectors.days_beside(days)
    except Exception:  # whatever it was, a page is never kept out of date for it
        logger.warning("the import's days are unknown: every day page is made again", exc_info=True)
        return {day_marks.ALL}


@receiver(post_save, sender=Paper, dispatch_uid="pages.paper_saved")
@receiver(post_delete, sender=Paper, dispatch_uid="pages.paper_deleted")
def paper_changed(sender, **kwargs):
    """A paper saved or deleted one at a time (the admin, a fixture): it may have moved from
    any day, so every day's page goes out of date."""
    cache.bump_on_commit()


@receiver(neighbours_stored, dispatch_uid="pages.neighbours_stored")
def neighbours_changed(sender, **kwargs):
    """Papers' similar papers were found (after an import, in a task): paper pages show
    them, day pages do not."""
    cache.bump_on_commit(days=())
