"""The digest pipeline end to end: PostgreSQL, Redis, real Celery worker processes, SMTP.

The test process writes subscribers and papers into the test database, runs the
dispatcher as ``manage.py send_digests`` (what beat's hourly task calls), and a real
``celery worker`` process (prefork, 2 children) delivers to an aiosmtpd server on
127.0.0.1 started by the test. Assertions are on what the SMTP server received and on
the delivery rows.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Q

from devtools.smtp_sink import SmtpSink
from digests.models import Delivery
from subscriptions.models import Subscriber
from subscriptions.tokens import read_token
from tests.digests.helpers import TOPIC_PAPERS, make_papers, make_subscriber

pytestmark = [pytest.mark.pipeline, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/Sao_Paulo",
]
TOPICS = list(TOPIC_PAPERS)


def _database_url() -> str:
    """The test database, for the worker processes (SQLite's test database is a file)."""
    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def pipeline_env(transactional_db, clean_redis, redis_url, sink, tmp_path):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.e2e.worker_settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
        "EMAIL_TIMEOUT": "20",
        "SECRET_KEY": settings.SECRET_KEY,
        "SITE_URL": settings.SITE_URL,
        "ALLOWED_HOSTS": ",".join(settings.ALLOWED_HOSTS),
        "DEBUG": "1",
        "VAR_DIR": str(tmp_path / "var"),
        "LOG_FORMAT": "plain",
        "LOG_LEVEL": "WARNING",
        "SEND_RATE_PER_SECOND": "300",
        "DIGEST_BATCH_SIZE": "20",
        "CONN_MAX_AGE": "0",
    }


class Worker:
    """``celery -A digestsite worker`` in its own process group (so SIGKILL takes all of it)."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log, self.proc = env, log, None

    def start(self) -> Worker:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "digestsite", "worker", "-c", "2", "--pool=prefork"]
            + ["--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "WARNING"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self):
        """SIGKILL the worker and its children at once: no warm shutdown, no acks."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def worker_factory(pipeline_env, tmp_path):
    workers: list[Worker] = []

    def start(**extra_env) -> Worker:
        worker = Worker({**pipeline_env, **extra_env}, tmp_path / f"worker{len(workers)}.log").start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for worker in workers:
        if worker.log.exists():
            print(f"--- {worker.log.name}\n{worker.log.read_text(errors='replace')[-4000:]}")


def send_digests(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "send_digests", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_until_settled(timeout: float = 90):
    """Until no delivery is QUEUED or SENDING (the workers are done with everything)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Delivery.objects.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]).exists():
            return
        time.sleep(0.2)
    pending = list(Delivery.objects.exclude(status=Delivery.Status.SENT).values("id", "status", "last_error")[:10])
    raise AssertionError(f"deliveries still pending after {timeout}s: {pending}")


def _due_now(tz_name: str, now: dt.datetime) -> dict:
    """Schedule fields that make a subscriber in ``tz_name`` due at ``now`` (this hour, local)."""
    local = now.astimezone(ZoneInfo(tz_name))
    return {"timezone": tz_name, "weekday": local.weekday(), "send_hour": local.hour}


def _zones_away_from_midnight(now: dt.datetime) -> list[str]:
    """Zones whose local clock is not within 10 minutes of midnight (the period would change mid-test)."""
    safe = []
    for name in ZONES:
        local = now.astimezone(ZoneInfo(name))
        minutes = local.hour * 60 + local.minute
        if 10 <= minutes <= 24 * 60 - 10:
            safe.append(name)
    return safe


def test_two_hundred_subscribers_get_one_correct_email_each(worker_factory, pipeline_env, sink):
    make_papers()
    now = dt.datetime.now(dt.UTC)
    zones = _zones_away_from_midnight(now)
    expected: dict[str, set[str]] = {}
    for n in range(200):
        topics = [TOPICS[n % len(TOPICS)]] + ([TOPICS[(n * 7 + 3) % len(TOPICS)]] if n % 3 == 0 else [])
        tz_name = zones[n % len(zones)]
        fields = _due_now(tz_name, now)
        if n % 4 == 1 and now.astimezone(ZoneInfo(tz_name)).weekday() < 5:
            fields["frequency"] = Subscriber.Frequency.DAILY
        email = f"reader{n:03d}@example.org"
        make_subscriber(email, topics=topics, **fields)
        expected[email] = {title for topic in topics for title, _ in TOPIC_PAPERS[topic]}

    # Not due: their hour is still ahead today; inactive people; a topic with no papers.
    later = [z for z in zones if now.astimezone(ZoneInfo(z)).hour < 23]
    for n, tz_name in enumerate(later[:10]):
        fields = _due_now(tz_name, now)
        fields["send_hour"] += 1
        make_subscriber(f"later{n}@example.org", topics=[TOPICS[0]], **fields)
    for n, status in enumerate(["pending", "paused", "unsubscribed", "bounced"]):
        make_subscriber(f"inactive{n}@example.org", topics=[TOPICS[0]], status=status, **_due_now("UTC", now))
    make_subscriber("nothing-new@example.org", topics=["medieval poetry"], **_due_now("UTC", now))
    # A server that is busy twice, then accepts; and a mailbox that does not exist.
    make_subscriber("busy@example.org", topics=[TOPICS[1]], **_due_now("UTC", now))
    sink.script("busy@example.org", "451 4.3.0 Try again later", "451 4.3.0 Try again later")
    make_subscriber("gone@example.org", topics=[TOPICS[1]], **_due_now("UTC", now))
    sink.script_rcpt("gone@example.org", "550 5.1.1 No such user")  # refused at RCPT TO: suppressed
    expected["busy@example.org"] = {title for title, _ in TOPIC_PAPERS[TOPICS[1]]}

    worker_factory()
    started = time.monotonic()
    out = send_digests(pipeline_env)
    assert "Deliveries created: 203" in out, out  # 200 + nothing-new + busy + gone
    wait_until_settled()
    elapsed = time.monotonic() - started
    print(f"203 deliveries settled in {elapsed:.1f}s")

    received = sink.by_recipient()
    assert set(received) == set(expected), set(received) ^ set(expected)
    subscribers = {s.email: s for s in Subscriber.objects.all()}
    for address, messages in received.items():
        assert len(messages) == 1, (address, len(messages))
        message = messages[0]
        assert message["To"] == address
        assert message["Message-ID"].endswith(f"@{settings.MAIL_DOMAIN}>")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"] and message["Date"]
        token = message["List-Unsubscribe"].split("/unsubscribe/")[1].split("/")[0]
        assert read_token("unsubscribe", token)["s"] == subscribers[address].id
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        shown = {title for titles in TOPIC_PAPERS.values() for title, _ in titles if title in html}
        assert shown == expected[address], address
        assert all(title in text for title in expected[address])
        delivery = Delivery.objects.get(subscriber__email=address)
        assert delivery.message_id == message["Message-ID"]
        assert delivery.status == Delivery.Status.SENT

    statuses = dict(Delivery.objects.values_list("subscriber__email", "status"))
    assert statuses["nothing-new@example.org"] == Delivery.Status.SKIPPED
    busy = Delivery.objects.get(subscriber__email="busy@example.org")
    assert (busy.status, busy.attempts, sink.attempts["busy@example.org"]) == (Delivery.Status.SENT, 3, 3)
    gone = Delivery.objects.get(subscriber__email="gone@example.org")
    assert gone.status == Delivery.Status.FAILED and gone.last_error.startswith("550")
    assert Subscriber.objects.get(email="gone@example.org").status == Subscriber.Status.BOUNCED
    assert not any(address.startswith(("later", "inactive")) for address in statuses)

    # The next tick (or an operator running it twice) sends nothing.
    out = send_digests(pipeline_env)
    assert "Deliveries created: 0" in out and "enqueued: 0" in out, out
    time.sleep(1.0)
    assert sum(len(m) for m in sink.by_recipient().values()) == len(expected)

    # --now makes everyone active due, including those whose hour is ahead: they get
    # theirs; a second --now finds everyone served for this period.
    out = send_digests(pipeline_env, "--now", "--frequency", "weekly")
    assert "Deliveries created: 10" in out, out
    wait_until_settled()
    out = send_digests(pipeline_env, "--now")
    assert "Deliveries created: 0" in out, out
    time.sleep(1.0)
    received = sink.by_recipient()
    assert sorted(a for a in received if a.startswith("later")) == [f"later{n}@example.org" for n in range(10)]
    assert all(len(messages) == 1 for messages in received.values())
    assert not any(address.startswith("inactive") for address in received)


def _sixty_due_subscribers(prefix: str) -> list[str]:
    make_papers()
    now = dt.datetime.now(dt.UTC)
    addresses = [f"{prefix}{n:02d}@example.org" for n in range(60)]
    for n, address in enumerate(addresses):
        make_subscriber(address, topics=[TOPICS[n % len(TOPICS)]], **_due_now("UTC", now))
    return addresses


def _kill_both_children_while_the_server_holds(worker_factory, pipeline_env, sink, *, at: str):
    sink.hold_after(15, at=at)  # from the 16th message on the server holds: each child is stuck
    # Four SMTP connections per batch: up to four messages of a child wait at the server at once.
    first = worker_factory(SEND_RATE_PER_SECOND="40", DIGEST_BATCH_SIZE="10", DIGEST_SMTP_CONNECTIONS="4")
    send_digests(pipeline_env, "--now")
    sink.wait_for(lambda: sink.waiting >= 2, timeout=60, what="both worker children to be waiting on the server")
    first.kill()
    # Messages whose RCPT came before the 15th was in still go through: up to a group of
    # four per child (they wait for their dots while the group's last rows are begun).
    assert 15 <= len(sink.messages) <= 15 + 2 * 4


def _sent_or_handed_over() -> set[str]:
    """Rows recorded SENT, and handed-over claims: sent rows not recorded yet (a worker
    marks them SENT a few at a time) or held by the server after their dot."""
    rows = Delivery.objects.filter(Q(status=Delivery.Status.SENT) | Q(status=Delivery.Status.SENDING, handed_over=True))
    return set(rows.values_list("subscriber__email", flat=True))


def test_worker_killed_before_its_message_went_sends_it_later_once(worker_factory, pipeline_env, sink):
    addresses = _sixty_due_subscribers("early")
    _kill_both_children_while_the_server_holds(worker_factory, pipeline_env, sink, at="rcpt")
    # Killed at RCPT: the message never went and nothing was claimed for it; every
    # message the server accepted is recorded, or handed over.
    assert not Delivery.objects.filter(status=Delivery.Status.SENDING, handed_over=False).exists()
    assert _sent_or_handed_over() == {address for address, _ in sink.messages}
    sink.release()

    worker_factory()  # restarted; the broker redelivers the unacknowledged batches
    wait_until_settled(timeout=90)
    received = sink.by_recipient()
    assert sorted(received) == addresses
    assert all(len(messages) == 1 for messages in received.values())
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 60


def test_worker_killed_after_handing_its_message_over_never_sends_it_twice(worker_factory, pipeline_env, sink):
    addresses = _sixty_due_subscribers("late")
    _kill_both_children_while_the_server_holds(worker_factory, pipeline_env, sink, at="data")
    # Killed after the final dots, waiting for the answers: each child's rows (one to four,
    # claimed together) are marked handed over; the server keeps those messages (as an MTA
    # does when the client vanishes after the dot: "SMTP connection lost after final dot").
    held = sink.held_recipients()
    assert 2 <= len(held) <= 8
    stuck = Delivery.objects.filter(status=Delivery.Status.SENDING)
    assert all(row.handed_over for row in stuck)
    assert _sent_or_handed_over() == {address for address, _ in sink.messages} | set(held)
    # Counted as sent once their lease runs out: the two held and any accepted rows not recorded yet.
    handed_over = sorted(stuck.values_list("subscriber__email", flat=True))
    assert set(held) <= set(handed_over)
    sink.release(accept=True)

    worker_factory()  # restarted: the redelivered batches count the two claims as sent after their lease
    wait_until_settled(timeout=90)
    received = sink.by_recipient()
    assert sorted(received) == addresses
    assert all(len(messages) == 1 for messages in received.values()), "nothing was sent twice"
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 60
    presumed = Delivery.objects.filter(last_error__startswith="counted as sent")
    assert sorted(presumed.values_list("subscriber__email", flat=True)) == handed_over
    assert not Delivery.objects.filter(attempts__gt=1).exists()  # nobody's message was sent again


def test_batches_lost_with_a_redis_restart_are_sent_by_the_next_tick(worker_factory, pipeline_env, sink, clean_redis):
    make_papers()
    now = dt.datetime.now(dt.UTC)
    addresses = [f"lost{n:02d}@example.org" for n in range(30)]
    for n, address in enumerate(addresses):
        make_subscriber(address, topics=[TOPICS[n % len(TOPICS)]], **_due_now("UTC", now))
    out = send_digests(pipeline_env)  # no worker yet: the batches wait in Redis
    assert "Deliveries created: 30" in out, out
    clean_redis.flushdb()  # Redis restarted without persistence: the queued batches are gone

    worker_factory()
    time.sleep(3)  # longer than the rescue threshold of these settings (2 s)
    assert sink.messages == [] and Delivery.objects.filter(status=Delivery.Status.QUEUED).count() == 30

    out = send_digests(pipeline_env)  # the next hourly tick
    assert "Deliveries created: 0, re-enqueued: 30" in out, out
    wait_until_settled()
    received = sink.by_recipient()
    assert sorted(received) == addresses and all(len(m) == 1 for m in received.values())
