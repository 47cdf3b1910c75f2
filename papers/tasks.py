"""Celery tasks for papers: thin wrappers around ``papers.services``."""

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from papers import services

FETCH_MAX_RETRIES = 4


class SourcesUnreachable(Exception):
    """Some sources failed on the network; the task retries just those."""


@shared_task(bind=True, name="papers.tasks.fetch_sources", max_retries=FETCH_MAX_RETRIES)
def fetch_sources(self, sources: list[str] | None = None) -> dict:
    """Import ``settings.PAPER_SOURCES`` (or ``sources``). Sources that failed on the
    network are retried with exponential backoff; bad input is not retried (it would
    fail the same way), it is recorded on its ImportRun."""
    report = services.fetch_sources(sources)
    if report.unreachable:
        countdown = get_exponential_backoff_interval(
            factor=60,
            retries=self.request.retries,
            maximum=min(30 * 60, settings.CELERY_VISIBILITY_TIMEOUT - 60),
            full_jitter=True,
        )
        error = SourcesUnreachable("; ".join(f"{s}: {report.failed[s]}" for s in report.unreachable))
        raise self.retry(kwargs={"sources": report.unreachable}, countdown=countdown, exc=error)
    return {"imported": len(report.results), "failed": len(report.failed)}
