"""dispatch: who is due, and their delivery rows, made once and enqueued after commit."""

import datetime as dt

import pytest
from django.db.models import F
from django.utils import timezone

from digests import claims, dispatch, retries, tasks
from digests.models import Delivery, Issue
from subscriptions.models import Subscriber
from tests.digests.helpers import make_subscriber, queued_delivery

pytestmark = pytest.mark.django_db

Status = Delivery.Status
UTC = dt.UTC
MONDAY_0900_UTC = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def dispatch_due(**kwargs):
    """The dispatcher as beat runs it: rows reach the workers through the tasks' enqueue."""
    return dispatch.dispatch_due(enqueue=tasks.enqueue_deliveries, **kwargs)


def test_dispatch_creates_due_deliveries_once_and_enqueues_after_commit(
    papers, enqueued, django_capture_on_commit_callbacks, settings
):
    settings.DIGEST_BATCH_SIZE = 2
    due = [make_subscriber(f"due{n}@example.org", timezone="Europe/Berlin") for n in range(3)]  # 08:00 = 07:00 UTC
    make_subscriber("tokyo@example.org", timezone="Asia/Tokyo")  # due since Sunday 23:00 UTC
    make_subscriber("la@example.org", timezone="America/Los_Angeles")  # 08:00 PST = 16:00 UTC: not yet
    make_subscriber("paused@example.org", status=Subscriber.Status.PAUSED)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = dispatch_due(now=MONDAY_0900_UTC)
        assert enqueued == []  # nothing leaves before the commit
    assert len(callbacks) == 1  # one chunk for the issue: Berlin's three and Tokyo's one together
    assert (result.created, result.enqueued, result.batches, result.issues) == (4, 4, 2, ["weekly 2026-W49"])
    assert sorted(Delivery.objects.values_list("subscriber__email", flat=True)) == sorted(
        [s.email for s in due] + ["tokyo@example.org"]
    )
    assert sorted(len(b) for b in enqueued) == [2, 2]
    assert sorted(sum(enqueued, [])) == sorted(Delivery.objects.values_list("id", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        again = dispatch_due(now=MONDAY_0900_UTC + dt.timedelta(hours=1))
    assert (again.created, again.enqueued) == (0, 0)
    assert Delivery.objects.count() == 4 and len(enqueued) == 2

    later = dispatch_due(now=MONDAY_0900_UTC + dt.timedelta(hours=8))  # LA's 08:00
    assert later.created == 1
    assert Delivery.objects.filter(subscriber__email="la@example.org").exists()


def test_dispatched_rows_are_new_deliveries_and_existing_rows_are_left_alone(
    papers, enqueued, django_capture_on_commit_callbacks
):
    subscribers = [make_subscriber(f"row{n}@example.org", timezone="Europe/Berlin") for n in range(3)]
    issue = Issue.objects.create(frequency="weekly", period="2026-W49")
    taken = queued_delivery(subscribers[0], issue, status=Status.SENT, attempts=1, message_id="<m@x>")
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch_due(now=MONDAY_0900_UTC)
    assert (result.created, result.enqueued) == (2, 2)
    fresh = Delivery(issue=issue)
    fields = ["status", "attempts", "last_error", "message_id", "paper_ids", "items", "claimed_at", "handed_over"]
    for row in Delivery.objects.filter(issue=issue).exclude(id=taken.id):
        assert [getattr(row, f) for f in fields] == [getattr(fresh, f) for f in fields]
        assert row.sent_at is None and before <= row.created_at <= row.updated_at <= timezone.now()
    taken.refresh_from_db()
    assert (taken.status, taken.attempts, taken.message_id) == (Status.SENT, 1, "<m@x>")
    assert sorted(sum(enqueued, [])) == sorted(Delivery.objects.exclude(id=taken.id).values_list("id", flat=True))
    # A second dispatcher, even one forced to see everyone as due: every row exists
    # already, it makes none and enqueues none.
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due(now=MONDAY_0900_UTC, force=True).created == 0
    assert Delivery.objects.count() == 3 and len(sum(enqueued, [])) == 2


@pytest.mark.django_db(transaction=True)  # each chunk commits on its own, as in production
def test_dispatch_commits_and_enqueues_chunk_by_chunk_and_a_stopped_one_is_finished_next_tick(
    papers, enqueued, monkeypatch
):
    monkeypatch.setattr(dispatch, "DISPATCH_CHUNK", 2)
    for n in range(5):
        make_subscriber(f"due{n}@example.org", timezone="Europe/Berlin")
    calls = []

    def stop_at_the_second_chunk(ids):
        calls.append(ids)
        if len(calls) == 2:
            raise RuntimeError("the dispatcher was stopped")
        return tasks.enqueue_deliveries(ids)

    with pytest.raises(RuntimeError):
        dispatch.dispatch_due(enqueue=stop_at_the_second_chunk, now=MONDAY_0900_UTC)
    assert len(enqueued) == 1 and sorted(enqueued[0]) == sorted(Delivery.objects.values_list("id", flat=True))
    assert Delivery.objects.count() == 2  # the first chunk stands, committed and enqueued

    again = dispatch_due(now=MONDAY_0900_UTC)
    assert (again.created, again.enqueued) == (3, 3)
    assert Delivery.objects.count() == 5
    assert sorted(sum(enqueued, [])) == sorted(Delivery.objects.values_list("id", flat=True))  # each once


def test_dispatch_inserts_each_chunk_in_subscriber_id_order(papers, monkeypatch):
    """Two dispatchers inserting the same rows in different orders could deadlock on the
    unique index. On PostgreSQL an updated row moves to the end of the table, so without
    an ORDER BY the first subscribers, edited since, would come last."""
    monkeypatch.setattr(dispatch, "DISPATCH_CHUNK", 3)
    people = [make_subscriber(f"order{n}@example.org", timezone="Europe/Berlin") for n in range(7)]
    Subscriber.objects.filter(id__in=[p.id for p in people[:4]]).update(send_hour=F("send_hour"))  # edited
    chunks = []

    def record(ids):
        chunks.append(list(Delivery.objects.filter(id__in=ids).order_by("id").values_list("subscriber_id", flat=True)))
        return 1

    assert dispatch.dispatch_due(enqueue=record, now=MONDAY_0900_UTC).created == 7
    assert sum(chunks, []) == [p.id for p in people] and [len(c) for c in chunks] == [3, 3, 1]


def test_dispatch_filters_by_frequency_and_force_makes_everyone_due(papers, enqueued):
    make_subscriber("weekly@example.org", weekday=4)  # Friday: not due on Monday
    make_subscriber("daily@example.org", frequency="daily", send_hour=23)
    assert dispatch_due(now=MONDAY_0900_UTC).created == 0
    forced = dispatch_due(now=MONDAY_0900_UTC, frequency="daily", force=True)
    assert (forced.created, forced.issues) == (1, ["daily 2026-11-30"])
    forced = dispatch_due(now=MONDAY_0900_UTC, force=True)
    assert (forced.created, forced.issues) == (1, ["weekly 2026-W49"])  # the daily one is served
    assert dispatch_due(now=MONDAY_0900_UTC, force=True).created == 0


def test_someone_confirmed_after_the_send_time_waits_for_the_next_period(papers, enqueued):
    make_subscriber("new@example.org", confirmed_at=MONDAY_0900_UTC - dt.timedelta(minutes=30))
    assert dispatch_due(now=MONDAY_0900_UTC).created == 0
    next_monday = MONDAY_0900_UTC + dt.timedelta(days=7)
    assert dispatch_due(now=next_monday).issues == ["weekly 2026-W50"]


def test_dispatch_reenqueues_lost_tasks_and_expired_claims(papers, enqueued, django_capture_on_commit_callbacks):
    now = timezone.now()
    # Not due: confirmed after this week's send time, whichever weekday today is.
    subscribers = [
        make_subscriber(f"s{n}@example.org", weekday=(now.weekday() + 1) % 7, confirmed_at=now) for n in range(4)
    ]
    issue = Issue.objects.create(frequency="weekly", period="2026-W01")
    lost = queued_delivery(subscribers[0], issue)
    fresh = queued_delivery(subscribers[1], issue)
    dead_claim = queued_delivery(subscribers[2], issue, status=Status.SENDING)
    live_claim = queued_delivery(subscribers[3], issue, status=Status.SENDING, claimed_at=now)
    Delivery.objects.filter(id=lost.id).update(updated_at=now - retries.rescue_after() - dt.timedelta(seconds=1))
    Delivery.objects.filter(id=dead_claim.id).update(claimed_at=now - claims.sending_lease() - dt.timedelta(1))

    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch_due(now=now)
    assert result.rescued == 2
    assert sorted(sum(enqueued, [])) == sorted([lost.id, dead_claim.id])
    assert fresh.id not in sum(enqueued, []) and live_claim.id not in sum(enqueued, [])
    # Touched: the next tick does not enqueue the same row again while it waits.
    assert dispatch_due(now=now + dt.timedelta(minutes=1)).rescued == 1  # only the dead claim


def test_retry_failed_requeues_active_subscribers_only(papers, enqueued, django_capture_on_commit_callbacks):
    issue = Issue.objects.create(frequency="weekly", period="2026-W49")
    failed = queued_delivery(make_subscriber("f@example.org"), issue, status=Status.FAILED, attempts=5)
    gone = queued_delivery(
        make_subscriber("g@example.org", status=Subscriber.Status.UNSUBSCRIBED), issue, status=Status.FAILED
    )
    sent = queued_delivery(make_subscriber("s@example.org"), issue, status=Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.retry_failed(issue, enqueue=tasks.enqueue_deliveries) == 1
    assert enqueued == [[failed.id]]
    assert dict(Delivery.objects.values_list("id", "status")) == {
        failed.id: Status.QUEUED,
        gone.id: Status.FAILED,
        sent.id: Status.SENT,
    }
    assert Delivery.objects.get(id=failed.id).attempts == 0


def test_an_issues_rows_from_many_time_zones_go_out_in_full_batches(
    papers, enqueued, settings, django_capture_on_commit_callbacks
):
    """200 readers over a dozen time zones and hours: batches are full, not one per schedule."""
    settings.DIGEST_BATCH_SIZE = 100
    zones = ["UTC", "Europe/Berlin", "Asia/Tokyo", "America/New_York", "Asia/Kolkata", "Australia/Adelaide"]
    for n in range(200):
        make_subscriber(f"r{n}@example.org", topics=[], timezone=zones[n % len(zones)], send_hour=n % 24)
    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch_due(now=MONDAY_0900_UTC, force=True)
    assert result.created == 200 and result.batches == 2
    assert sorted(len(batch) for batch in enqueued) == [100, 100]
