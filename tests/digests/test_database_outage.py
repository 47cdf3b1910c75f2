"""The database goes away between a group's final dots and its COMMIT (PostgreSQL
restarted): the messages the server took are recorded as sent once the database is back,
and the batch's retry sends nothing twice (the drill is bench/faults.py's drill 6)."""

import pytest
from django.db import OperationalError, transaction

from digests import delivery, sending
from digests.models import Delivery
from tests.digests.helpers import make_subscriber, queued_delivery, smtp
from tests.digests.test_delivery import _fixed_ranking


class _Rollback(Exception):
    pass


@pytest.mark.django_db(transaction=True)  # the group's atomic() is outermost, as in a worker
def test_a_commit_lost_after_the_dots_sends_nothing_twice(papers, monkeypatch, sink, settings):
    settings.DIGEST_SMTP_CONNECTIONS = 3
    _fixed_ranking(monkeypatch, papers)
    rows = [queued_delivery(make_subscriber(f"o{n}@example.org", topics=["diffusion sampling"])) for n in range(5)]
    real = sending._claim_and_finish
    lost = []

    def commit_lost_once(group, claimed, outcomes, dots):
        if lost:
            return real(group, claimed, outcomes, dots)
        try:
            with transaction.atomic():  # the claims and the dots, then a COMMIT that never lands
                real(group, claimed, outcomes, dots)
                raise _Rollback
        except _Rollback:
            pass
        lost.append(list(dots))
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(sending, "_claim_and_finish", commit_lost_once)
    with pytest.raises(OperationalError):  # the task retries the batch on this
        delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert len(lost[0]) == 3 and len(sink.messages) == 3  # the server took the first group
    taken = Delivery.objects.filter(id__in=lost[0])
    assert {d.status for d in taken} == {Delivery.Status.SENT} and all(d.message_id for d in taken)

    result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))  # the retry
    assert sorted(result.sent) == sorted(r.id for r in rows if r.id not in lost[0])
    copies = sink.by_recipient()
    assert sorted(copies) == sorted(f"o{n}@example.org" for n in range(5))
    assert all(len(messages) == 1 for messages in copies.values())


@pytest.mark.django_db(transaction=True)
def test_a_claim_lost_before_any_dot_drops_the_unfinished_messages_at_once(papers, monkeypatch, sink, settings):
    import time

    from digests import claims

    settings.DIGEST_SMTP_CONNECTIONS = 3
    _fixed_ranking(monkeypatch, papers)
    rows = [queued_delivery(make_subscriber(f"c{n}@example.org", topics=["diffusion sampling"])) for n in range(4)]
    real_claim = claims.claim
    failed = []

    def claim_fails_once(row, carried, *, handed_over):
        if not failed:
            failed.append(row.id)
            raise OperationalError("terminating connection due to administrator command")
        return real_claim(row, carried, handed_over=handed_over)

    monkeypatch.setattr(claims, "claim", claim_fails_once)
    started = time.monotonic()
    with pytest.raises(OperationalError):
        delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    # The sessions left inside DATA were dropped, not sent QUIT (which a server reads as
    # message text, answering only at the timeout).
    assert time.monotonic() - started < 3 and sink.messages == []
    result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert sorted(result.sent) == sorted(r.id for r in rows)
    assert all(len(copies) == 1 for copies in sink.by_recipient().values()) and len(sink.messages) == 4
