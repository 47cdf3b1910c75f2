"""The circuit breaker: an issue whose sends keep failing the same permanent way pauses.

One configuration mistake (a sender the server refuses, a relay that refuses us) fails
every message with the same reply. Sending on would fail the whole list; suppressing
would lose it. So when ``DIGEST_BREAKER_CONSECUTIVE`` permanent failures with the same
code come in a row (no send accepted in between), or they make ``DIGEST_BREAKER_SHARE``
of the issue's attempts once it has ``DIGEST_BREAKER_MIN_ATTEMPTS``, the issue pauses:
its rows stay queued, nobody is suppressed by it, the dashboard shows why, and an
operator resumes it (``resume``) once the cause is fixed.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from digests.models import Delivery, Issue
from emails.replies import Refusal
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)

Status = Delivery.Status


def _same_failure(refusal: Refusal) -> Q:
    """Rows of the issue that failed with this refusal's reply code and enhanced code."""
    same = Q(status=Status.FAILED, last_error__startswith=f"{refusal.code} ")
    if refusal.enhanced:
        same &= Q(last_error__contains=f" {refusal.enhanced} ")
    return same


# Past DIGEST_BREAKER_CONSECUTIVE failures of one kind (an issue with many unknown
# mailboxes), the issue-wide counts are taken at every this-many-th failure only.
CHECK_EVERY = 5


def note_permanent_failure(issue_id: int, refusal: Refusal) -> bool:
    """Count a permanent failure just recorded on one of the issue's rows; pause the issue
    when the same failure keeps coming. True when the issue is paused (now or before).

    Never on the path of a send that works. First one count over the issue's failed rows
    (the (issue, status) index); the issue-wide counts only when the breaker could trip.
    """
    rows = Delivery.objects.filter(issue_id=issue_id)
    same = _same_failure(refusal)
    same_count = rows.filter(same).count()
    could_trip = (
        same_count >= settings.DIGEST_BREAKER_CONSECUTIVE
        or same_count >= settings.DIGEST_BREAKER_SHARE * settings.DIGEST_BREAKER_MIN_ATTEMPTS
    )
    if not could_trip or (same_count > settings.DIGEST_BREAKER_CONSECUTIVE and same_count % CHECK_EVERY):
        return is_paused(issue_id)
    # Accepted by the server: SENT, or handed over and about to be recorded SENT.
    accepted = Q(status=Status.SENT) | Q(status=Status.SENDING, handed_over=True)
    counts = rows.aggregate(
        attempted=Count("id", filter=accepted | Q(status=Status.FAILED)),
        last_accepted=Max("claimed_at", filter=accepted),
    )
    in_a_row = same_count
    if counts["last_accepted"] is not None:
        in_a_row = rows.filter(same, updated_at__gt=counts["last_accepted"]).count()
    reason = ""
    if in_a_row >= settings.DIGEST_BREAKER_CONSECUTIVE:
        reason = f"{in_a_row} sends in a row failed permanently with {refusal.key}"
    elif (
        counts["attempted"] >= settings.DIGEST_BREAKER_MIN_ATTEMPTS
        and same_count >= settings.DIGEST_BREAKER_SHARE * counts["attempted"]
    ):
        reason = f"{same_count} of {counts['attempted']} sends failed permanently with {refusal.key}"
    if reason:
        pause(issue_id, f"{reason}: {refusal.describe()}")
    return bool(reason) or is_paused(issue_id)


def pause(issue_id: int, reason: str) -> bool:
    """Pause the issue (if it is not paused already); True if this call paused it."""
    paused = Issue.objects.filter(id=issue_id, paused_at__isnull=True).update(
        paused_at=timezone.now(), pause_reason=reason[:2000]
    )
    if paused:
        logger.error("issue paused by the circuit breaker", extra={"issue": issue_id, "reason": reason})
    return bool(paused)


def is_paused(issue_id: int) -> bool:
    return Issue.objects.filter(id=issue_id, paused_at__isnull=False).exists()


def resume(issue: Issue, *, enqueue) -> int:
    """An operator's word that the cause is fixed: unpause the issue and send what it held
    back (its queued rows, and its failed rows again, for subscribers still active).
    Returns how many rows were enqueued."""
    with transaction.atomic():
        Issue.objects.filter(id=issue.id).update(paused_at=None, pause_reason="")
        held = Delivery.objects.filter(
            issue=issue, status__in=[Status.QUEUED, Status.FAILED], subscriber__status=Subscriber.Status.ACTIVE
        )
        ids = list(held.order_by("id").values_list("id", flat=True))
        if ids:
            Delivery.objects.filter(id__in=ids, status__in=[Status.QUEUED, Status.FAILED]).update(
                status=Status.QUEUED, attempts=0, claimed_at=None, updated_at=timezone.now()
            )
            enqueue(ids)
    logger.warning("paused issue resumed", extra={"issue": issue.id, "enqueued": len(ids)})
    return len(ids)
