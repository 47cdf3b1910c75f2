"""deliver_batch: rendering, sending and recording a batch of rows."""

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

import emails
from digests import content, delivery, retries
from digests.models import Delivery
from digests.ratelimit import LocalRateLimiter
from ranking.api import RankedPaper
from subscriptions.models import Subscriber
from tests.digests.helpers import TOPIC_PAPERS, make_subscriber, queued_delivery, smtp

pytestmark = pytest.mark.django_db

Status = Delivery.Status
UTC = dt.UTC
MONDAY_0900_UTC = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


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
    result = delivery.deliver_batch([r.id for r in rows])
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

    again = delivery.deliver_batch([r.id for r in rows])  # a redelivered task
    assert sorted(again.already_done) == sorted(r.id for r in rows) and len(sink.messages) == 3


def test_inactive_and_suppressed_subscribers_and_empty_digests_are_not_sent(papers):
    unsubscribed = queued_delivery(make_subscriber("u@example.org", status=Subscriber.Status.UNSUBSCRIBED))
    bounced = queued_delivery(make_subscriber("b@example.org", status=Subscriber.Status.BOUNCED))
    nothing = queued_delivery(make_subscriber("n@example.org", topics=["medieval poetry"]))
    result = delivery.deliver_batch([unsubscribed.id, bounced.id, nothing.id])
    assert sorted(result.skipped) == sorted([unsubscribed.id, nothing.id]) and result.suppressed == [bounced.id]
    assert dict(Delivery.objects.values_list("id", "status")) == {
        unsubscribed.id: Status.SKIPPED,
        bounced.id: Status.SUPPRESSED,
        nothing.id: Status.SKIPPED,
    }
    assert mail.outbox == []


def _fixed_ranking(monkeypatch, papers):
    """Ranking that runs no queries, so the count below is the pipeline's own."""
    from digests import content

    chosen = [p for ps in papers.values() for p in ps][:5]

    def rank_for_subscribers(subscribers, *, since=None, limit=None):
        ranked = [RankedPaper(p, 1.0, "diffusion sampling", "matches", ["x"]) for p in chosen]
        return {s.id: ranked for s in subscribers}

    monkeypatch.setattr(content, "rank_for_subscribers", rank_for_subscribers)


@pytest.mark.parametrize("size", [3, 12])
def test_batch_query_count_is_fixed_plus_claim_and_outcome_per_row(
    papers, monkeypatch, django_assert_num_queries, size
):
    _fixed_ranking(monkeypatch, papers)
    topics = ["diffusion sampling", "x"]
    rows = [queued_delivery(make_subscriber(f"q{n}@example.org", topics=topics)) for n in range(size)]
    # 1 rows + subscribers + issues, 1 topics; then per row: 1 claim, 1 outcome.
    with django_assert_num_queries(2 + 2 * size):
        result = delivery.deliver_batch([r.id for r in rows])
    assert len(result.sent) == size == len(mail.outbox)


@pytest.mark.django_db(transaction=True)  # the claim's atomic() is outermost, as in a worker
@pytest.mark.parametrize("size", [3, delivery.RECORD_SENT_EVERY + 2])
def test_over_smtp_a_batch_writes_a_claim_per_row_and_records_sent_rows_together(papers, monkeypatch, sink, size):
    _fixed_ranking(monkeypatch, papers)
    rows = [queued_delivery(make_subscriber(f"s{n}@example.org", topics=["diffusion sampling"])) for n in range(size)]
    with CaptureQueriesContext(connection) as queries:
        result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert len(result.sent) == size == len(sink.messages)
    sql = [" ".join(q["sql"].replace('"', "").split()) for q in queries.captured_queries]
    statements = [q.split(" ", 1)[0] for q in sql]
    statements = [s for s in statements if s not in ("BEGIN", "COMMIT")]  # SQLite logs them, PostgreSQL does not
    claims = [q for q in sql if "SET status = 'sending'" in q]
    records = [q for q in sql if "SET status = 'sent'" in q]
    # rows + subscribers + issues, topics; a claim per row; one UPDATE records up to RECORD_SENT_EVERY
    # sent rows (or a few more: it runs after a group of DIGEST_SMTP_CONNECTIONS rows)
    assert statements == ["SELECT", "SELECT"] + ["UPDATE"] * (size + len(records))
    assert len(claims) == size and 1 <= len(records) <= -(-size // delivery.RECORD_SENT_EVERY)
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
    result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
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
    result = delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    assert sorted(result.sent) == sorted(r.id for r in rows) and not result.retry
    assert sorted(sink.by_recipient()) == sorted(f"r{n}@example.org" for n in range(5))
    assert len(sink.sessions) == 1
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Status.SENT, 1)}


def test_accepted_rows_not_yet_recorded_are_recorded_when_the_batch_stops(papers, monkeypatch, sink):
    _fixed_ranking(monkeypatch, papers)
    rows = [queued_delivery(make_subscriber(f"t{n}@example.org", topics=["diffusion sampling"])) for n in range(3)]
    original = content.digest_context

    def fail_on_third(*, subscriber, **kwargs):
        if subscriber.email == "t2@example.org":
            raise SoftTimeLimitExceeded()
        return original(subscriber=subscriber, **kwargs)

    monkeypatch.setattr(content, "digest_context", fail_on_third)
    with pytest.raises(SoftTimeLimitExceeded):
        delivery.deliver_batch([r.id for r in rows], connection=smtp(sink))
    statuses = dict(Delivery.objects.values_list("subscriber__email", "status"))
    assert statuses == {"t0@example.org": "sent", "t1@example.org": "sent", "t2@example.org": "queued"}
    assert len(sink.messages) == 2


def test_4xx_is_retried_with_the_row_back_in_queue(papers, sink):
    row = queued_delivery(make_subscriber("busy@example.org"))
    sink.script("busy@example.org", "451 4.3.0 Try again later")
    result = delivery.deliver_batch([row.id], connection=smtp(sink))
    assert result.retry == [row.id] and result.retry_in > 0
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.QUEUED, 1) and row.last_error.startswith("451")
    assert delivery.deliver_batch([row.id], connection=smtp(sink)).sent == [row.id]
    assert len(sink.by_recipient()["busy@example.org"]) == 1


def test_4xx_gives_up_after_max_attempts(papers, sink):
    row = queued_delivery(make_subscriber("busy@example.org"), attempts=retries.MAX_ATTEMPTS - 1)
    sink.script("busy@example.org", "452 4.2.2 Mailbox full")
    assert delivery.deliver_batch([row.id], connection=smtp(sink)).failed == [row.id]
    assert Delivery.objects.get(id=row.id).status == Status.FAILED


def test_550_user_unknown_fails_and_suppresses_while_the_batch_goes_on(papers, sink):
    gone = queued_delivery(make_subscriber("gone@example.org"))
    spam = queued_delivery(make_subscriber("strict@example.org"))
    fine = queued_delivery(make_subscriber("fine@example.org"))
    sink.script_rcpt("gone@example.org", "550 5.1.1 No such user")
    sink.script("strict@example.org", "554 5.7.1 Message rejected as spam")
    result = delivery.deliver_batch([gone.id, spam.id, fine.id], connection=smtp(sink))
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
    result = delivery.deliver_batch([gone.id, later.id, fine.id], connection=smtp(sink))
    assert (result.suppressed, result.retry, result.sent) == ([gone.id], [later.id], [fine.id])
    rows = {r.id: r for r in Delivery.objects.all()}
    assert (rows[gone.id].status, rows[gone.id].attempts, rows[gone.id].claimed_at) == (Status.FAILED, 1, None)
    assert (rows[later.id].status, rows[later.id].attempts) == (Status.QUEUED, 1)
    assert rows[later.id].last_error.startswith("451 4.7.1")
    assert Subscriber.objects.get(email="gone@example.org").status == Subscriber.Status.BOUNCED
    assert list(sink.by_recipient()) == ["fine@example.org"]


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
    result = delivery.deliver_batch([r.id for r in rows], connection=connection)
    assert result.retry_ids == [r.id for r in rows] and result.retry_in > 0
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Status.QUEUED, 0)}


def test_a_batch_stops_claiming_inside_the_task_time_limit(papers, settings, monkeypatch):
    rows = [queued_delivery(make_subscriber(f"t{n}@example.org")) for n in range(3)]
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 10
    clock = iter([0.0, 1.0, 2.0, 6.0, 7.0])  # budget ends at 5 s: the third row waits
    monkeypatch.setattr(delivery, "monotonic", lambda: next(clock))
    result = delivery.deliver_batch([r.id for r in rows], limiter=LocalRateLimiter(1000))
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
    result = delivery.deliver_batch([r.id for r in rows], limiter=limiter)
    assert len(result.sent) == 23 and len(mail.outbox) == 23
    assert limiter.asked == [10, 10, 3]  # three calls to the shared limiter, not 23


def test_running_out_of_time_while_rendering_leaves_the_row_queued_not_failed(papers, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    row = queued_delivery(make_subscriber("slow@example.org"))

    def out_of_time(name, context):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(emails, "render", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        delivery.deliver_batch([row.id], limiter=LocalRateLimiter(1000))
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Status.QUEUED, 0, "")
