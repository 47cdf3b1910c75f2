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
    network, or did not fit in the time limit, are retried with exponential backoff; bad
    input is not retried (it would fail the same way), it is recorded on its ImportRun."""
    # Finish well inside the soft time limit; whatever is left over is retried below.
    budget = settings.CELERY_TASK_SOFT_TIME_LIMIT - 10
    report = services.fetch_sources(sources, time_budget=budget)
    if report.to_retry:
        countdown = get_exponential_backoff_interval(
            factor=60,
            retries=self.request.retries,
            maximum=min(30 * 60, settings.CELERY_VISIBILITY_TIMEOUT - 60),
            full_jitter=True,
        )
        error = SourcesUnreachable(
            "; ".join([f"{s}: {report.failed[s]}" for s in report.unreachable] + report.postponed)
        )
        raise self.retry(kwargs={"sources": report.to_retry}, countdown=countdown, exc=error)
    return {"imported": len(report.results), "failed": len(report.failed)}
