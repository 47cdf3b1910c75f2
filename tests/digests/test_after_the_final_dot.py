"""What each recipient gets when the SMTP server fails in the window after a message's
final dot (RFC 1047), with several connections side by side: a server scripted to keep
a message and then drop the connection, to answer 250 and then drop it, to close with
421 at the next command, or to answer slower than the client's socket timeout.

Only a message whose server kept it but never answered may arrive twice (no SMTP
client can tell it from one the server lost); it carries its first Message-ID again,
and no one else in the batch gets anything twice.
"""

import time

import pytest
from django.core.mail import get_connection

from devtools.smtp_sink import ANSWER_THEN_DROP, KEEP_THEN_DROP, slow_answer
from digests import delivery, sending
from digests.models import Delivery
from tests.digests.helpers import make_subscriber, queued_delivery

pytestmark = pytest.mark.django_db(transaction=True)  # each group's atomic() is outermost, as in a worker

Status = Delivery.Status
READERS = [f"r{n}@example.org" for n in range(10)]


@pytest.fixture
def rows(papers, settings):
    settings.DIGEST_SMTP_CONNECTIONS = 4
    settings.DIGEST_RETRY_BASE_SECONDS = 0.01
    settings.DIGEST_MAX_RETRY_DELAY_SECONDS = 1
    return [queued_delivery(make_subscriber(a, topics=["diffusion sampling"])) for a in READERS]


def _connection(sink, timeout: float = 5):
    backend = "django.core.mail.backends.smtp.EmailBackend"
    return get_connection(backend, host="127.0.0.1", port=sink.port, timeout=timeout)


def _send_until_settled(rows, sink, *, timeout: float = 5, rounds: int = 4):
    """Batches, as the task's retries would run them, until no row is left to retry."""
    ids = [r.id for r in rows]
    for _ in range(rounds):
        result = delivery.deliver_batch(ids, connection=_connection(sink, timeout))
        ids = result.retry_ids
        if not ids:
            return
    raise AssertionError(f"rows still to retry after {rounds} rounds: {ids}")


def _copies(sink) -> dict[str, list[str]]:
    """Per recipient, the Message-IDs of the copies the server kept."""
    return {address: [m["Message-ID"] for m in found] for address, found in sink.by_recipient().items()}


def test_a_message_the_server_kept_without_answering_is_the_only_one_sent_twice_and_keeps_its_message_id(
    rows, sink, caplog
):
    sink.script("r5@example.org", KEEP_THEN_DROP)
    _send_until_settled(rows, sink)
    copies = _copies(sink)
    assert sorted(copies) == READERS
    assert {a: len(ids) for a, ids in copies.items() if len(ids) > 1} == {"r5@example.org": 2}
    assert len(set(copies["r5@example.org"])) == 1  # the resend carries the stored Message-ID
    assert sink.attempts["r5@example.org"] == 2 and all(sink.attempts[a] == 1 for a in READERS if a != "r5@example.org")
    assert set(Delivery.objects.values_list("status", flat=True)) == {Status.SENT}
    lost = [r for r in caplog.records if r.getMessage().startswith("no answer to a final dot")]
    assert [r.delivery for r in lost] == [rows[5].id]  # said as such, for the operator and the drills


def test_a_message_answered_250_before_the_connection_dropped_is_never_sent_again(rows, sink):
    sink.script("r5@example.org", ANSWER_THEN_DROP)
    _send_until_settled(rows, sink)
    assert {a: len(ids) for a, ids in _copies(sink).items()} == dict.fromkeys(READERS, 1)
    assert all(sink.attempts[a] == 1 for a in READERS)  # one DATA each: no message went twice
    assert set(Delivery.objects.values_list("status", flat=True)) == {Status.SENT}
    assert Delivery.objects.get(id=rows[5].id).attempts == 1


def test_a_server_closing_with_421_mid_batch_costs_no_one_a_second_copy(rows, sink):
    sink.script("r5@example.org", "421 4.3.2 Service shutting down")  # answered, not kept
    sink.script_rcpt("r6@example.org", "421 4.3.2 Service shutting down")  # at the next envelope
    _send_until_settled(rows, sink)
    assert {a: len(ids) for a, ids in _copies(sink).items()} == dict.fromkeys(READERS, 1)
    assert set(Delivery.objects.values_list("status", flat=True)) == {Status.SENT}
    assert Delivery.objects.get(id=rows[5].id).attempts == 2


def test_a_server_slower_to_answer_the_dot_than_the_socket_timeout_still_delivers_once(rows, sink, settings):
    """RFC 5321 4.5.3.2.6: a client waits up to 10 minutes for the answer to the final dot;
    one that gives up sooner sends again what the server already has. Twice slow, the old
    client made the symptom the Postfix drill once saw: three copies, one Message-ID."""
    settings.EMAIL_DATA_END_TIMEOUT = 10
    sink.script("r5@example.org", slow_answer(1.5), slow_answer(1.5))
    _send_until_settled(rows, sink, timeout=0.5)  # connect and command timeout: 0.5 s
    assert {a: len(ids) for a, ids in _copies(sink).items()} == dict.fromkeys(READERS, 1)
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Status.SENT, 1)}


def test_the_wait_for_the_answers_of_a_group_is_one_deadline_not_one_per_connection(rows, sink, settings, monkeypatch):
    """Four slow servers cost one ``EMAIL_DATA_END_TIMEOUT``, not four and not the socket
    timeout; after it the messages are retried (the server may have them: RFC 1047)."""
    settings.EMAIL_DATA_END_TIMEOUT = 1.5
    spent = []
    real_hand_over = sending.hand_over

    def timed_hand_over(staged, accepted, **kwargs):  # the dots and their answers
        started = time.monotonic()
        try:
            return real_hand_over(staged, accepted, **kwargs)
        finally:
            spent.append(time.monotonic() - started)

    monkeypatch.setattr(sending, "hand_over", timed_hand_over)
    for address in READERS[:4]:
        sink.script(address, slow_answer(4))
    result = delivery.deliver_batch([r.id for r in rows[:4]], connection=_connection(sink, 0.2))
    assert len(spent) == 1 and 1.5 <= spent[0] < 4.0, spent  # four waits would be 6 s
    assert sorted(result.retry) == sorted(r.id for r in rows[:4])


def test_inside_a_task_the_wait_ends_before_its_time_limit_and_the_message_is_retried(rows, sink, settings):
    """A server silent after the dot until the task's soft time limit would leave the row
    handed over, to be counted as sent unseen; it is retried instead (RFC 1047: at worst a
    second copy with the same Message-ID)."""
    assert delivery.deliver_batch([rows[1].id], connection=_connection(sink)).sent  # ranking warmed up
    settings.EMAIL_DATA_END_TIMEOUT = 60
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 5  # the answers are waited for until 4.5 s into the batch
    sink.script("r0@example.org", slow_answer(20))
    started = time.monotonic()
    result = delivery.deliver_batch([rows[0].id], connection=_connection(sink))
    assert 4.5 * 0.8 < time.monotonic() - started < 4.5 * 1.5
    assert sink.attempts["r0@example.org"] == 1  # the message went, its answer did not come
    assert result.retry == [rows[0].id]
    assert Delivery.objects.get(id=rows[0].id).status == Status.QUEUED
