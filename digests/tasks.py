"""Thin Celery tasks: load ids, call one service, retry what is transient.

Both run with ``acks_late`` (settings): a task whose worker dies is redelivered, and
the delivery rows' claims make the second run a no-op for whatever was already sent.
"""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from digests import delivery, dispatch
from digests.retries import retry_delay

# A batch that cannot reach the SMTP server, Redis or the database is retried this many
# times; after that its rows stay QUEUED and the hourly dispatcher re-enqueues them.
BATCH_MAX_RETRIES = 8


def enqueue_deliveries(delivery_ids: list[int]) -> int:
    """Send batches of ids to the workers once the surrounding transaction commits;
    returns how many batches. The dispatcher and the operators' actions pass it on."""
    size = settings.DIGEST_BATCH_SIZE
    batches = [delivery_ids[i : i + size] for i in range(0, len(delivery_ids), size)]

    def send():
        for batch in batches:
            deliver_batch.delay(batch)

    transaction.on_commit(send)
    return len(batches)


@shared_task(name="digests.tasks.dispatch_due")
def dispatch_due(frequency=None, force=False):
    """Beat calls this hourly: create and enqueue the deliveries that are due."""
    return dispatch.dispatch_due(enqueue=enqueue_deliveries, frequency=frequency, force=force).as_dict()


@shared_task(bind=True, name="digests.tasks.deliver_batch", max_retries=BATCH_MAX_RETRIES)
def deliver_batch(self, delivery_ids):
    """Send one batch; transient failures come back later with only the rows that need it."""
    try:
        result = delivery.deliver_batch(delivery_ids)
    except SoftTimeLimitExceeded:
        # Out of time (ranking or SMTP slower than planned): run the batch again; rows
        # already SENT are no-ops, a claim cut short is retaken after its lease.
        raise self.retry(args=[delivery_ids], countdown=5) from None
    except (OperationalError, InterfaceError) as exc:
        # The database went away for a moment or broke a deadlock: transient. Rows already
        # SENT are no-ops on the retry; a claim cut short is retaken after its lease.
        countdown = retry_delay(self.request.retries + 1)  # jittered: two deadlocked workers part
        raise self.retry(args=[delivery_ids], countdown=countdown, exc=exc) from exc
    if result.retry_ids and not self.request.is_eager:
        # retry_in is capped below the broker's visibility timeout (retries.max_retry_delay).
        raise self.retry(args=[result.retry_ids], countdown=result.retry_in)
    # Eager (no broker): no retry loop here, where a web request may be waiting; the rows
    # stay QUEUED for ``send_digests``' own rounds (``delivery.deliver_deferred``) or the next
    # dispatcher run.
    return result.as_dict()
