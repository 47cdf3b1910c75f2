"""The delivery services without Celery workers: dispatch, claims, outcomes, operators' tools."""

import datetime as dt
import smtplib
import socket

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core import mail
from django.core.mail import get_connection
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from digests import services
from digests.models import Delivery, Issue
from digests.ratelimit import LocalRateLimiter
from ranking import RankedPaper
from subscriptions.models import Subscriber
from tests.digests.helpers import TOPIC_PAPERS, make_papers, make_subscriber
from tests.e2e.smtp_sink import SmtpSink

pytestmark = pytest.mark.django_db
Status = Delivery.Status
UTC = dt.UTC
MONDAY_0900_UTC = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def papers():
    """Seen yesterday by the real clock: deliveries rank what is new at the time they go
    out (the dispatch tests pin their own ``now``, which only decides who is due)."""
    return make_papers(first_seen_at=timezone.now() - dt.timedelta(days=1))


@pytest.fixture
def enqueued(monkeypatch):
    """Record the batches dispatch enqueues instead of running them."""
    from digests import tasks

    batches = []
    monkeypatch.setattr(tasks.deliver_batch, "delay", lambda ids: batches.append(list(ids)))
    return batches


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


def smtp(sink):
    return get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=sink.port, timeout=5)


def queued_delivery(subscriber, issue=None, **fields) -> Delivery:
    issue = issue or Issue.objects.get_or_create(frequency="weekly", period="2026-W49")[0]
    return Delivery.objects.create(issue=issue, subscriber=subscriber, **fields)


# ----------------------------------------------------------------------------- dispatch


def test_dispatch_creates_due_deliveries_once_and_enqueues_after_commit(
    papers, enqueued, django_capture_on_commit_callbacks, settings
):
    settings.DIGEST_BATCH_SIZE = 2
    due = [make_subscriber(f"due{n}@example.org", timezone="Europe/Berlin") for n in range(3)]  # 08:00 = 07:00 UTC
    make_subscriber("tokyo@example.org", timezone="Asia/Tokyo")  # due since Sunday 23:00 UTC
    make_subscriber("la@example.org", timezone="America/Los_Angeles")  # 08:00 PST = 16:00 UTC: not yet
    make_subscriber("paused@example.org", status=Subscriber.Status.PAUSED)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = services.dispatch_due(now=MONDAY_0900_UTC)
        assert enqueued == []  # nothing leaves before the commit
    assert len(callbacks) == 2  # one chunk per send time here (Berlin's three, Tokyo's one)
    assert (result.created, result.enqueued, result.batches, result.issues) == (4, 4, 3, ["weekly 2026-W49"])
    assert sorted(Delivery.objects.values_list("subscriber__email", flat=True)) == sorted(
        [s.email for s in due] + ["tokyo@example.org"]
    )
    assert sorted(len(b) for b in enqueued) == [1, 1, 2]
    assert sorted(sum(enqueued, [])) == sorted(Delivery.objects.values_list("id", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        again = services.dispatch_due(now=MONDAY_0900_UTC + dt.timedelta(hours=1))
    assert (again.created, again.enqueued) == (0, 0)
    assert Delivery.objects.count() == 4 and len(enqueued) == 3

    later = services.dispatch_due(now=MONDAY_0900_UTC + dt.timedelta(hours=8))  # LA's 08:00
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
        result = services.dispatch_due(now=MONDAY_0900_UTC)
    assert (result.created, result.enqueued) == (2, 2)
    fresh = Delivery(issue=issue)
    fields = ["status", "attempts", "last_error", "message_id", "paper_ids", "items", "claimed_at", "handed_over"]
    for row in Delivery.objects.filter(issue=issue).exclude(id=taken.id):
        assert [getattr(row, f) for f in fields] == [getattr(fresh, f) for f in fields]
        assert row.sent_at is None and before <= row.created_at <= row.updated_at <= timezone.now()
    taken.refresh_from_db()
    assert (taken.status, taken.attempts, taken.message_id) == (Status.SENT, 1, "<m@x>")
    assert sorted(sum(enqueued, [])) == sorted(Delivery.objects.exclude(id=taken.id).values_list("id", flat=True))
    # A dispatcher that comes second (its query ran before the first one's rows were in):
    # every row exists already, it makes none and enqueues none.
    with django_capture_on_commit_callbacks(execute=True):
        assert services._create_deliveries(issue, [s.id for s in subscribers], timezone.now()) == ([], 0)
    assert Delivery.objects.count() == 3 and len(sum(enqueued, [])) == 2


@pytest.mark.django_db(transaction=True)  # each chunk commits on its own, as in production
def test_dispatch_commits_and_enqueues_chunk_by_chunk_and_a_stopped_one_is_finished_next_tick(
    papers, enqueued, monkeypatch
):
    monkeypatch.setattr(services, "DISPATCH_CHUNK", 2)
    for n in range(5):
        make_subscriber(f"due{n}@example.org", timezone="Europe/Berlin")
    real = services._create_deliveries
    calls = []

    def stop_at_the_second_chunk(issue, subscriber_ids, stamp):
        calls.append(subscriber_ids)
        if len(calls) == 2:
            raise RuntimeError("the dispatcher was stopped")
        return real(issue, subscriber_ids, stamp)

    monkeypatch.setattr(services, "_create_deliveries", stop_at_the_second_chunk)
    with pytest.raises(RuntimeError):
        services.dispatch_due(now=MONDAY_0900_UTC)
    assert len(enqueued) == 1 and sorted(enqueued[0]) == sorted(Delivery.objects.values_list("id", flat=True))
    assert Delivery.objects.count() == 2  # the first chunk stands, committed and enqueued

    monkeypatch.setattr(services, "_create_deliveries", real)
    again = services.dispatch_due(now=MONDAY_0900_UTC)
    assert (again.created, again.enqueued) == (3, 3)
    assert Delivery.objects.count() == 5
    assert sorted(sum(enqueued, [])) == sorted(Delivery.objects.values_list("id", flat=True))  # each once


def test_dispatch_inserts_each_chunk_in_subscriber_id_order(papers, enqueued, monkeypatch):
    """Two dispatchers inserting the same rows in different orders could deadlock on the
    unique index. On PostgreSQL an updated row moves to the end of the table, so without
    an ORDER BY the first subscribers, edited since, would come last."""
    monkeypatch.setattr(services, "DISPATCH_CHUNK", 3)
    people = [make_subscriber(f"order{n}@example.org", timezone="Europe/Berlin") for n in range(7)]
    Subscriber.objects.filter(id__in=[p.id for p in people[:4]]).update(send_hour=F("send_hour"))  # edited
    real = services._create_deliveries
    chunks = []

    def spy(issue, subscriber_ids, stamp):
        chunks.append(list(subscriber_ids))
        return real(issue, subscriber_ids, stamp)

    monkeypatch.setattr(services, "_create_deliveries", spy)
    assert services.dispatch_due(now=MONDAY_0900_UTC).created == 7
    assert sum(chunks, []) == [p.id for p in people]


def test_dispatch_filters_by_frequency_and_force_makes_everyone_due(papers, enqueued):
    make_subscriber("weekly@example.org", weekday=4)  # Friday: not due on Monday
    make_subscriber("daily@example.org", frequency="daily", send_hour=23)
    assert services.dispatch_due(now=MONDAY_0900_UTC).created == 0
    forced = services.dispatch_due(now=MONDAY_0900_UTC, frequency="daily", force=True)
    assert (forced.created, forced.issues) == (1, ["daily 2026-11-30"])
    forced = services.dispatch_due(now=MONDAY_0900_UTC, force=True)
    assert (forced.created, forced.issues) == (1, ["weekly 2026-W49"])  # the daily one is served
    assert services.dispatch_due(now=MONDAY_0900_UTC, force=True).created == 0


def test_someone_confirmed_after_the_send_time_waits_for_the_next_period(papers, enqueued):
    make_subscriber("new@example.org", confirmed_at=MONDAY_0900_UTC - dt.timedelta(minutes=30))
    assert services.dispatch_due(now=MONDAY_0900_UTC).created == 0
    next_monday = MONDAY_0900_UTC + dt.timedelta(days=7)
    assert services.dispatch_due(now=next_monday).issues == ["weekly 2026-W50"]


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
    Delivery.objects.filter(id=lost.id).update(updated_at=now - services.rescue_after() - dt.timedelta(seconds=1))
    Delivery.objects.filter(id=dead_claim.id).update(claimed_at=now - services.sending_lease() - dt.timedelta(1))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.dispatch_due(now=now)
    assert result.rescued == 2
    assert sorted(sum(enqueued, [])) == sorted([lost.id, dead_claim.id])
    assert fresh.id not in sum(enqueued, []) and live_claim.id not in sum(enqueued, [])
    # Touched: the next tick does not enqueue the same row again while it waits.
    assert services.dispatch_due(now=now + dt.timedelta(minutes=1)).rescued == 1  # only the dead claim


# ----------------------------------------------------------------------------- delivery


def test_batch_sends_one_message_each_over_one_smtp_connection(papers, sink, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.DIGEST_SMTP_CONNECTIONS = 1
    subscribers = [
        make_subscriber("a@example.org", topics=["diffusion sampling", "protein folding"]),
        make_subscriber("b@example.org", topics=["speech recognition"]),
        make_subscriber("c@example.org", topics=["graph networks"]),
    ]
    rows = [queued_delivery(s) for s in subscribers]
    result = services.deliver_batch([r.id for r in rows])
    assert sorted(result.sent) == sorted(r.id for r in rows)
    assert sorted(sink.by_recipient()) == ["a@example.org", "b@example.org", "c@example.org"]
    assert len(sink.sessions) == 1  # one connection for the whole batch
    a = Delivery.objects.get(id=rows[0].id)
    assert (a.status, a.attempts, a.last_error) == (Status.SENT, 1, "")
    assert a.message_id == sink.by_recipient()["a@example.org"][0]["Message-ID"]
    titles = {p.title: p.id for ps in papers.values() for p in ps}
    expected = {t for topic in ("diffusion sampling", "protein folding") for t, _ in TOPIC_PAPERS[topic]}
    assert {titles[t] for t in expected} == set(a.paper_ids)
    assert [item["paper"] for item in a.items] == a.paper_ids

    again = services.deliver_batch([r.id for r in rows])  # a redelivered task
    assert sorted(again.already_done) == sorted(r.id for r in rows) and len(sink.messages) == 3


@pytest.mark.parametrize(
    ("status", "handed_over", "lease", "claimable"),
    [
        (Status.QUEUED, False, None, True),
        (Status.SENDING, False, "expired", True),  # its worker died before the message went
        (Status.SENDING, False, "live", False),
        (Status.SENDING, True, "expired", False),  # the server has it: counted as sent, never retaken
        (Status.SENT, False, None, False),
        (Status.FAILED, False, None, False),
    ],
)
def test_a_claim_takes_exactly_the_claimable_rows_and_stores_what_the_copy_shows(status, handed_over, lease, claimable):
    now = timezone.now()
    claimed_at = {"expired": now - services.sending_lease() - dt.timedelta(seconds=5), "live": now}.get(lease)
    row = queued_delivery(
        make_subscriber("c@example.org"), status=status, handed_over=handed_over, claimed_at=claimed_at, attempts=1
    )
    assert Delivery.objects.filter(services._claimable(now), id=row.id).exists() == claimable  # the ORM's view
    carried = {"message_id": "<m@x>", "paper_ids": [3, 1], "items": [{"paper": 3, "topic": "t", "why": 'w "q"'}]}
    taken = services._claim(row, carried, handed_over=True)
    row.refresh_from_db()
    assert (taken is not None) == claimable
    if claimable:
        assert (row.status, row.handed_over, row.claimed_at, row.attempts) == (Status.SENDING, True, taken, 2)
        assert (row.message_id, row.paper_ids, row.items) == ("<m@x>", [3, 1], carried["items"])
    else:
        assert (row.status, row.attempts, row.message_id) == (status, 1, "")


def test_rows_held_by_a_live_claim_are_left_alone_and_retried_after_the_lease(papers):
    row = queued_delivery(make_subscriber("a@example.org"), status=Status.SENDING, claimed_at=timezone.now())
    result = services.deliver_batch([row.id])
    assert result.busy == [row.id] and result.retry_ids == [row.id]
    lease = services.sending_lease().total_seconds()
    assert min(lease, services.max_retry_delay()) - 2 <= result.retry_in <= services.max_retry_delay()
    assert mail.outbox == [] and Delivery.objects.get(id=row.id).attempts == 0


def test_an_expired_claim_is_reclaimed_and_keeps_its_message_id(papers):
    stale = timezone.now() - services.sending_lease() - dt.timedelta(seconds=1)
    subscriber = make_subscriber("a@example.org")
    row = queued_delivery(subscriber, status=Status.SENDING, claimed_at=stale, attempts=1, message_id="<x@testserver>")
    assert services.deliver_batch([row.id]).sent == [row.id]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.message_id) == (Status.SENT, 2, "<x@testserver>")
    assert mail.outbox[0].extra_headers["Message-ID"] == "<x@testserver>"


def test_a_row_claimed_by_another_worker_meanwhile_is_not_sent(papers):
    row = queued_delivery(make_subscriber("a@example.org"))

    class CompetitorWinsTheRace(LocalRateLimiter):
        def acquire(self, *args, **kwargs):
            Delivery.objects.filter(id=row.id).update(status=Status.SENDING, claimed_at=timezone.now())
            return 0.0

    result = services.deliver_batch([row.id], limiter=CompetitorWinsTheRace(1000))
    assert result.busy == [row.id] and result.sent == [] and mail.outbox == []


def test_inactive_and_suppressed_subscribers_and_empty_digests_are_not_sent(papers):
    unsubscribed = queued_delivery(make_subscriber("u@example.org", status=Subscriber.Status.UNSUBSCRIBED))
    bounced = queued_delivery(make_subscriber("b@example.org", status=Subscriber.Status.BOUNCED))
    nothing = queued_delivery(make_subscriber("n@example.org", topics=["medieval poetry"]))
    result = services.deliver_batch([unsubscribed.id, bounced.id, nothing.id])
    assert sorted(result.skipped) == sorted([unsubscribed.id, nothing.id]) and result.suppressed == [bounced.id]
    assert dict(Delivery.objects.values_list("id", "status")) == {
        unsubscribed.id: Status.SKIPPED,
        bounced.id: Status.SUPPRESSED,
        nothing.id: Status.SKIPPED,
    }
    assert mail.outbox == []


def _fixed_ranking(monkeypatch, papers):
    """Ranking that runs no queries, so the count below is the pipeline's own."""
    import ranking

    chosen = [p for ps in papers.values() for p in ps][:5]

    def rank_for_subscribers(subscribers, *, since=None, limit=None):
        ranked = [RankedPaper(p, 1.0, "diffusion sampling", "matches", ["x"]) for p in chosen]
        return {s.id: ranked for s in subscribers}

    monkeypatch.setattr(ranking, "rank_for_subscribers", rank_for_subscribers)


@pytest.mark.parametrize("size", [3, 12])
def test_batch_query_count_is_fixed_plus_claim_and_outcome_per_row(
    papers, monkeypatch, django_assert_num_queries, size
):
    _fixed_ranking(monkeypatch, papers)
    topics = ["diffusion sampling", "x"]
    rows = [queued_delivery(make_subscriber(f"q{n}@example.org", topics=topics)) for n in range(size)]
    # 1 rows + subscribers + issues, 1 topics; then per row: 1 claim, 1 outcome.
    with django_assert_num_queries(2 + 2 * size):
        result = services.deliver_batch([r.id for r in rows])
    assert len(result.sent) == size == len(mail.outbox)


@pytest.mark.django_db(transaction=True)  # the claim's atomic() is outermost, as in a worker
@pytest.mark.parametrize("size", [3, services.RECORD_SENT_EVERY + 2])
def test_over_smtp_a_batch_writes_a_claim_per_row_and_records_sent_rows_together(papers, monkeypatch, sink, size):
    _fixed_ranking(monkeypatch, papers)
    rows = [queued_delivery(make_subscriber(f"s{n}@example.org", topics=["diffusion sampling"])) for n in range(size)]
    with CaptureQueriesContext(connection) as queries:
        result = services.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert len(result.sent) == size == len(sink.messages)
    sql = [" ".join(q["sql"].replace('"', "").split()) for q in queries.captured_queries]
    statements = [q.split(" ", 1)[0] for q in sql]
    statements = [s for s in statements if s not in ("BEGIN", "COMMIT")]  # SQLite logs them, PostgreSQL does not
    claims = [q for q in sql if "SET status = 'sending'" in q]
    records = [q for q in sql if "SET status = 'sent'" in q]
    # rows + subscribers + issues, topics; a claim per row; one UPDATE records up to RECORD_SENT_EVERY
    # sent rows (or a few more: it runs after a group of DIGEST_SMTP_CONNECTIONS rows)
    assert statements == ["SELECT", "SELECT"] + ["UPDATE"] * (size + len(records))
    assert len(claims) == size and 1 <= len(records) <= -(-size // services.RECORD_SENT_EVERY)
    sent = Delivery.objects.filter(status=Delivery.Status.SENT, handed_over=False, sent_at=F("claimed_at"))
    assert sent.count() == size


@pytest.mark.django_db(transaction=True)  # the group's atomic() is outermost, as in a worker
def test_over_smtp_a_group_of_rows_is_claimed_together_then_its_dots_written(papers, monkeypatch, sink, settings):
    from emails import smtp as smtp_steps

    settings.DIGEST_SMTP_CONNECTIONS = 3
    _fixed_ranking(monkeypatch, papers)
    rows = [queued_delivery(make_subscriber(f"g{n}@example.org", topics=["diffusion sampling"])) for n in range(7)]
    real_dot = smtp_steps.send_final_dot
    at_each_dot = []

    def dot(session):
        claimed = Delivery.objects.filter(status=Status.SENDING, handed_over=True).count()
        at_each_dot.append((connection.in_atomic_block, claimed, len(sink.messages)))
        real_dot(session)

    monkeypatch.setattr(smtp_steps, "send_final_dot", dot)
    result = services.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert sorted(result.sent) == sorted(r.id for r in rows)
    assert sorted(sink.by_recipient()) == sorted(f"g{n}@example.org" for n in range(7))
    assert len(sink.sessions) == 3  # three connections side by side, each used again
    # Groups of 3, 3 and 1: every row of a group is claimed before the group's first dot
    # (earlier groups' rows stay handed over until the batch records them SENT), all of it
    # inside one transaction, and nothing of a group is delivered before its dots.
    assert [claimed for _, claimed, _ in at_each_dot] == [3, 3, 3, 6, 6, 6, 7]
    assert all(inside for inside, _, _ in at_each_dot)
    assert [delivered for _, _, delivered in at_each_dot][::3] == [0, 3, 6]
    assert Delivery.objects.filter(status=Status.SENT, handed_over=False).count() == 7


def test_a_server_that_refuses_more_connections_gets_one_and_nobody_loses_an_attempt(
    papers, monkeypatch, sink, settings
):
    from emails import smtp as smtp_steps

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    settings.DIGEST_SMTP_CONNECTIONS = 4
    _fixed_ranking(monkeypatch, papers)
    rows = [queued_delivery(make_subscriber(f"r{n}@example.org", topics=["diffusion sampling"])) for n in range(5)]
    # Every connection after the first goes where nothing listens (as a server at its limit refuses).
    monkeypatch.setattr(
        smtp_steps,
        "sibling",
        lambda connection: get_connection(
            "django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=closed_port, timeout=5
        ),
    )
    result = services.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert sorted(result.sent) == sorted(r.id for r in rows) and not result.retry
    assert sorted(sink.by_recipient()) == sorted(f"r{n}@example.org" for n in range(5))
    assert len(sink.sessions) == 1
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Status.SENT, 1)}


def test_accepted_rows_not_yet_recorded_are_recorded_when_the_batch_stops(papers, monkeypatch, sink):
    _fixed_ranking(monkeypatch, papers)
    rows = [queued_delivery(make_subscriber(f"t{n}@example.org", topics=["diffusion sampling"])) for n in range(3)]
    original = services.digest_context

    def fail_on_third(*, subscriber, **kwargs):
        if subscriber.email == "t2@example.org":
            raise SoftTimeLimitExceeded()
        return original(subscriber=subscriber, **kwargs)

    monkeypatch.setattr(services, "digest_context", fail_on_third)
    with pytest.raises(SoftTimeLimitExceeded):
        services.deliver_batch([r.id for r in rows], connection=smtp(sink))
    statuses = dict(Delivery.objects.values_list("subscriber__email", "status"))
    assert statuses == {"t0@example.org": "sent", "t1@example.org": "sent", "t2@example.org": "queued"}
    assert len(sink.messages) == 2


# ----------------------------------------------------------------------------- SMTP outcomes


def test_4xx_is_retried_with_the_row_back_in_queue(papers, sink):
    row = queued_delivery(make_subscriber("busy@example.org"))
    sink.script("busy@example.org", "451 4.3.0 Try again later")
    result = services.deliver_batch([row.id], connection=smtp(sink))
    assert result.retry == [row.id] and result.retry_in > 0
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.QUEUED, 1) and row.last_error.startswith("451")
    assert services.deliver_batch([row.id], connection=smtp(sink)).sent == [row.id]
    assert len(sink.by_recipient()["busy@example.org"]) == 1


def test_4xx_gives_up_after_max_attempts(papers, sink):
    row = queued_delivery(make_subscriber("busy@example.org"), attempts=services.MAX_ATTEMPTS - 1)
    sink.script("busy@example.org", "452 4.2.2 Mailbox full")
    assert services.deliver_batch([row.id], connection=smtp(sink)).failed == [row.id]
    assert Delivery.objects.get(id=row.id).status == Status.FAILED


def test_550_user_unknown_fails_and_suppresses_while_the_batch_goes_on(papers, sink):
    gone = queued_delivery(make_subscriber("gone@example.org"))
    spam = queued_delivery(make_subscriber("strict@example.org"))
    fine = queued_delivery(make_subscriber("fine@example.org"))
    sink.script("gone@example.org", "550 5.1.1 No such user")
    sink.script("strict@example.org", "554 5.7.1 Message rejected as spam")
    result = services.deliver_batch([gone.id, spam.id, fine.id], connection=smtp(sink))
    assert (result.suppressed, result.failed, result.sent) == ([gone.id], [spam.id], [fine.id])
    statuses = dict(Subscriber.objects.values_list("email", "status"))
    assert statuses["gone@example.org"] == Subscriber.Status.BOUNCED
    assert statuses["strict@example.org"] == Subscriber.Status.ACTIVE  # a policy rejection is not the address
    assert Delivery.objects.get(id=gone.id).status == Status.FAILED
    assert list(sink.by_recipient()) == ["fine@example.org"]


def test_refused_before_the_message_went_records_the_attempt_without_a_claim(papers, sink):
    gone = queued_delivery(make_subscriber("gone@example.org"))
    later = queued_delivery(make_subscriber("later@example.org"))
    fine = queued_delivery(make_subscriber("fine@example.org"))
    sink.script_rcpt("gone@example.org", "550 5.1.1 No such user")
    sink.script_rcpt("later@example.org", "451 4.7.1 Greylisted, try again")
    result = services.deliver_batch([gone.id, later.id, fine.id], connection=smtp(sink))
    assert (result.suppressed, result.retry, result.sent) == ([gone.id], [later.id], [fine.id])
    rows = {r.id: r for r in Delivery.objects.all()}
    assert (rows[gone.id].status, rows[gone.id].attempts, rows[gone.id].claimed_at) == (Status.FAILED, 1, None)
    assert (rows[later.id].status, rows[later.id].attempts) == (Status.QUEUED, 1)
    assert rows[later.id].last_error.startswith("451 4.7.1")
    assert Subscriber.objects.get(email="gone@example.org").status == Subscriber.Status.BOUNCED
    assert list(sink.by_recipient()) == ["fine@example.org"]


def test_a_handed_over_claim_whose_worker_died_is_counted_as_sent_not_sent_again(papers, sink):
    stale = timezone.now() - services.sending_lease() - dt.timedelta(seconds=1)
    subscriber = make_subscriber("a@example.org")
    row = queued_delivery(
        subscriber, status=Status.SENDING, claimed_at=stale, attempts=1, handed_over=True, paper_ids=[1]
    )
    assert not Delivery.objects.filter(services._claimable(timezone.now()), id=row.id).exists()
    result = services.deliver_batch([row.id], connection=smtp(sink))
    assert result.presumed_sent == [row.id] and result.sent == [] and sink.messages == []
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at, row.handed_over) == (Status.SENT, 1, stale, False)
    assert row.last_error.startswith("counted as sent")
    assert services.deliver_batch([row.id], connection=smtp(sink)).already_done == [row.id]


def test_over_smtp_the_claim_commits_with_the_final_dot(papers, sink, monkeypatch):
    from django.db import connection

    from emails import smtp as smtp_steps

    row = queued_delivery(make_subscriber("a@example.org"))
    seen = {}
    real_claim, real_dot = services._claim, smtp_steps.send_final_dot

    def claim_and_look(row, carried, *, handed_over):
        seen["messages at the server when claiming"] = len(sink.messages)
        seen["handed_over"] = handed_over
        return real_claim(row, carried, handed_over=handed_over)

    def dot_and_look(session):
        seen["dot written inside the claim's transaction"] = connection.in_atomic_block
        return real_dot(session)

    monkeypatch.setattr(services, "_claim", claim_and_look)
    monkeypatch.setattr(smtp_steps, "send_final_dot", dot_and_look)
    assert services.deliver_batch([row.id], connection=smtp(sink)).sent == [row.id]
    assert seen == {
        "messages at the server when claiming": 0,
        "handed_over": True,
        "dot written inside the claim's transaction": True,
    }
    assert len(sink.messages) == 1
    row.refresh_from_db()
    assert (row.status, row.handed_over, row.attempts) == (Status.SENT, False, 1)


def test_a_row_taken_by_another_worker_mid_transaction_is_dropped_at_the_server(papers, sink, monkeypatch):
    taken = queued_delivery(make_subscriber("taken@example.org"))
    fine = queued_delivery(make_subscriber("fine@example.org"))
    real_claim = services._claim

    def competitor_first(row, carried, *, handed_over):
        if row.id == taken.id:  # another worker claims it while our message waits for its dot
            Delivery.objects.filter(id=row.id).update(status=Status.SENDING, claimed_at=timezone.now())
        return real_claim(row, carried, handed_over=handed_over)

    monkeypatch.setattr(services, "_claim", competitor_first)
    result = services.deliver_batch([taken.id, fine.id], connection=smtp(sink))
    assert result.busy == [taken.id] and result.sent == [fine.id]
    assert list(sink.by_recipient()) == ["fine@example.org"]  # the unfinished message was discarded
    assert len(sink.sessions) == 1  # the abandoned session never reached DATA's end


@pytest.mark.django_db(transaction=True)
def test_a_dot_that_cannot_be_written_leaves_no_handed_over_claim_and_no_message(sink, monkeypatch):
    from emails import smtp as smtp_steps

    make_papers()
    row = queued_delivery(make_subscriber("a@example.org"))

    def connection_breaks(session):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(smtp_steps, "send_final_dot", connection_breaks)
    result = services.deliver_batch([row.id], connection=smtp(sink))
    assert result.retry == [row.id]
    row.refresh_from_db()  # the claim was undone before its COMMIT; the attempt is counted
    assert (row.status, row.attempts, row.handed_over) == (Status.QUEUED, 1, False)
    assert row.last_error.startswith("Connection unexpectedly closed")
    assert sink.messages == []


def test_lines_starting_with_a_dot_arrive_as_written(sink):
    from emails import smtp as smtp_steps

    body = b"Subject: dots\r\n\r\n.hidden line\r\n..two dots\r\n.\r\nlast line without end"
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as session:
        smtp_steps.begin(session, "digest@example.org", ["a@example.org"], body)
        assert sink.messages == []  # everything but the final dot: nothing delivered yet
        # The dot goes out at once, not after the server's delayed ACK (Nagle's algorithm).
        assert session.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        smtp_steps.send_final_dot(session)
        smtp_steps.read_answer(session)
    sink.wait_for(lambda: sink.messages, timeout=5, what="the message")
    assert sink.messages[0][1] == body + b"\r\n"


def test_unreachable_server_claims_nothing_and_retries_the_whole_batch(papers, sink):
    rows = [queued_delivery(make_subscriber(f"r{n}@example.org")) for n in range(3)]
    port = sink.port
    sink.stop()
    connection = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=port, timeout=2)
    result = services.deliver_batch([r.id for r in rows], connection=connection)
    assert result.retry_ids == [r.id for r in rows] and result.retry_in > 0
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Status.QUEUED, 0)}


@pytest.mark.parametrize(
    ("code", "text", "user_unknown"),
    [
        (550, "5.1.1 No such user", True),
        (550, "Requested action not taken: mailbox unavailable", True),
        (553, "5.1.3 Bad recipient address syntax", True),
        (552, "5.2.1 Mailbox disabled", True),
        (554, "5.7.1 Rejected by policy", False),
        (550, "Message rejected as spam", False),
        (552, "5.3.4 Message too big", False),
        (451, "4.1.1 Temporary lookup failure", False),
    ],
)
def test_user_unknown_classification(code, text, user_unknown):
    assert services.is_user_unknown(code, text) is user_unknown


def test_exceptions_map_to_codes():
    refused = smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"5.1.1 unknown")})
    assert services.smtp_failure(refused) == (550, "5.1.1 unknown")
    assert services.smtp_failure(smtplib.SMTPDataError(451, b"later")) == (451, "later")
    assert services.smtp_failure(TimeoutError("timed out"))[0] is None
    assert services.is_transient(None) and services.is_transient(421) and not services.is_transient(550)


def test_backoff_grows_with_jitter_and_never_passes_the_visibility_timeout(settings):
    settings.CELERY_VISIBILITY_TIMEOUT = 3600
    delays = [[services.retry_delay(attempt) for _ in range(50)] for attempt in range(1, 12)]
    ceiling = services.max_retry_delay()
    assert ceiling < settings.CELERY_VISIBILITY_TIMEOUT
    assert all(0 < d <= ceiling for ds in delays for d in ds)
    assert max(delays[0]) < min(delays[3])  # exponential
    assert len(set(delays[2])) > 40  # jitter
    settings.CELERY_VISIBILITY_TIMEOUT = 60
    assert max(services.retry_delay(20) for _ in range(50)) <= 30


# ----------------------------------------------------------------------------- previews and operators


def test_preview_renders_the_next_digest_and_records_nothing(papers):
    subscriber = make_subscriber("p@example.org", topics=["protein folding"])
    rendered = services.preview_digest(subscriber, now=MONDAY_0900_UTC)
    assert "Protein folding with sequence transformers" in rendered.html
    assert "Week of 7 December 2026" in rendered.text  # 09:00 is past Monday's 08:00: the next one
    assert Delivery.objects.count() == 0 and Issue.objects.count() == 0 and mail.outbox == []


def test_test_send_goes_to_the_operator_without_unsubscribe_headers(papers):
    subscriber = make_subscriber("p@example.org", topics=["protein folding"])
    services.send_test_digest(subscriber=subscriber, to_address="operator@example.org")
    (message,) = mail.outbox
    assert message.to == ["operator@example.org"] and message.subject.startswith("[Test]")
    assert "List-Unsubscribe" not in message.extra_headers
    assert "Protein folding with sequence transformers" in message.body
    assert Delivery.objects.count() == 0


def test_retry_failed_requeues_active_subscribers_only(papers, enqueued, django_capture_on_commit_callbacks):
    issue = Issue.objects.create(frequency="weekly", period="2026-W49")
    failed = queued_delivery(make_subscriber("f@example.org"), issue, status=Status.FAILED, attempts=5)
    gone = queued_delivery(
        make_subscriber("g@example.org", status=Subscriber.Status.UNSUBSCRIBED), issue, status=Status.FAILED
    )
    sent = queued_delivery(make_subscriber("s@example.org"), issue, status=Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.retry_failed(issue) == 1
    assert enqueued == [[failed.id]]
    assert dict(Delivery.objects.values_list("id", "status")) == {
        failed.id: Status.QUEUED,
        gone.id: Status.FAILED,
        sent.id: Status.SENT,
    }
    assert Delivery.objects.get(id=failed.id).attempts == 0


def test_suppress_and_restore_an_address(papers):
    subscriber = make_subscriber("Someone@Example.org".lower())
    row = queued_delivery(subscriber)
    assert services.suppress_address(" SOMEONE@example.org ", reason="complaint") == 1
    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.suppression_reason) == (Subscriber.Status.BOUNCED, "complaint")
    assert subscriber.suppressed_at is not None
    assert Delivery.objects.get(id=row.id).status == Status.SUPPRESSED
    assert services.suppress_address("someone@example.org", reason="again") == 0
    assert services.restore_address("someone@example.org") == 1
    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.suppressed_at) == (Subscriber.Status.ACTIVE, None)


def test_unsubscribed_people_are_not_turned_into_suppressed_ones():
    make_subscriber("u@example.org", status=Subscriber.Status.UNSUBSCRIBED)
    assert services.suppress_address("u@example.org", reason="bounce") == 0
    assert services.restore_address("u@example.org") == 0


@pytest.mark.parametrize(
    ("event_type", "reject_reason", "action", "status"),
    [
        ("bounced", "bounced", "suppressed", Subscriber.Status.BOUNCED),
        ("complained", "spam", "suppressed", Subscriber.Status.BOUNCED),
        ("rejected", "invalid", "suppressed", Subscriber.Status.BOUNCED),
        ("deferred", None, "ignored", Subscriber.Status.ACTIVE),
        ("delivered", None, "ignored", Subscriber.Status.ACTIVE),
        ("unsubscribed", None, "unsubscribed", Subscriber.Status.UNSUBSCRIBED),
    ],
)
def test_provider_events(event_type, reject_reason, action, status):
    make_subscriber("x@example.org")
    got = services.handle_provider_event(
        event_type=event_type, recipient="x@example.org", reject_reason=reject_reason, provider="postmark"
    )
    assert got == action
    assert Subscriber.objects.get(email="x@example.org").status == status


def test_a_batch_stops_claiming_inside_the_task_time_limit(papers, settings, monkeypatch):
    rows = [queued_delivery(make_subscriber(f"t{n}@example.org")) for n in range(3)]
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 10
    clock = iter([0.0, 1.0, 2.0, 6.0, 7.0])  # budget ends at 5 s: the third row waits
    monkeypatch.setattr(services, "monotonic", lambda: next(clock))
    result = services.deliver_batch([r.id for r in rows], limiter=LocalRateLimiter(1000))
    assert result.sent == [rows[0].id, rows[1].id] and result.retry == [rows[2].id]
    assert Delivery.objects.get(id=rows[2].id).status == Status.QUEUED


def test_a_batch_takes_send_slots_a_few_at_a_time_and_never_more_than_it_can_use(papers):
    rows = [queued_delivery(make_subscriber(f"s{n}@example.org")) for n in range(23)]

    class Counting(LocalRateLimiter):
        asked: list[int] = []

        def acquire(self, count=1, **kwargs):
            self.asked.append(count)
            return super().acquire(count, **kwargs)

    limiter = Counting(1000, burst=1000)
    result = services.deliver_batch([r.id for r in rows], limiter=limiter)
    assert len(result.sent) == 23 and len(mail.outbox) == 23
    assert limiter.asked == [10, 10, 3]  # three calls to the shared limiter, not 23


def test_running_out_of_time_while_rendering_leaves_the_row_queued_not_failed(papers, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    row = queued_delivery(make_subscriber("slow@example.org"))

    def out_of_time(name, context):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(services.emails, "render", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        services.deliver_batch([row.id], limiter=LocalRateLimiter(1000))
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Status.QUEUED, 0, "")


def _retry_asked_by_the_task(monkeypatch, error: Exception, ids: list[int]) -> dict:
    """What ``deliver_batch`` (the task) asks Celery for when the service raises ``error``."""
    from celery.exceptions import Retry

    from digests import tasks

    def failing(delivery_ids):
        raise error

    monkeypatch.setattr(tasks.services, "deliver_batch", failing)
    retried = {}

    def fake_retry(**kwargs):
        retried.update(kwargs)
        return Retry()

    monkeypatch.setattr(tasks.deliver_batch, "retry", fake_retry)
    with pytest.raises(Retry):
        tasks.deliver_batch.run(ids)
    return retried


def test_deliver_batch_task_retries_the_batch_when_out_of_time(monkeypatch):
    retried = _retry_asked_by_the_task(monkeypatch, SoftTimeLimitExceeded(), [1, 2, 3])
    assert retried == {"args": [[1, 2, 3]], "countdown": 5}


@pytest.mark.parametrize("message", ["deadlock detected", "server closed the connection unexpectedly"])
def test_deliver_batch_task_retries_the_batch_when_the_database_fails_for_a_moment(monkeypatch, message):
    from django.db import OperationalError

    asked = []
    monkeypatch.setattr(services, "retry_delay", lambda attempt: asked.append(attempt) or 5.0)
    retried = _retry_asked_by_the_task(monkeypatch, OperationalError(message), [4, 5])
    assert asked == [1]  # the batch's first retry, with the service's backoff
    assert (retried["args"], retried["countdown"], str(retried["exc"])) == ([[4, 5]], 5, message)
