"""Right after confirming, the welcome issue: the past week's strong matches, and the next
regular issue as a real date in the reader's time zone."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.utils import timezone

from digests import delivery, tasks
from digests.models import Delivery
from subscriptions import services
from subscriptions.links import confirm_url
from subscriptions.models import Subscriber
from subscriptions.schedule import Schedule, next_issue_text
from tests.digests.helpers import make_papers

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker(monkeypatch):
    """The batches the confirmation enqueues, sent at once as a worker would."""
    monkeypatch.setattr(tasks.deliver_batch, "delay", lambda ids: delivery.deliver_batch(list(ids)))


def sign_up(django_capture_on_commit_callbacks, topics):
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(
            email="new@example.org",
            topics=topics,
            authors=[],
            frequency="weekly",
            weekday=0,
            timezone="Europe/Berlin",
        )
    mail.outbox.clear()
    return Subscriber.objects.get()


def confirm(client, subscriber, django_capture_on_commit_callbacks):
    path = confirm_url(subscriber).removeprefix("http://testserver")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_confirming_sends_the_welcome_issue_with_this_weeks_strong_matches(
    client, worker, django_capture_on_commit_callbacks
):
    make_papers()
    subscriber = sign_up(django_capture_on_commit_callbacks, ["protein folding", "reinforcement learning"])
    page = confirm(client, subscriber, django_capture_on_commit_callbacks)

    expected_date = next_issue_text(Schedule.of(subscriber), timezone.now())
    assert re.match(r"Monday \d+ \w+( \d{4})?, around 08:00 Europe/Berlin", expected_date)
    assert f"Your first digest arrives {expected_date}" in " ".join(page.split())

    (welcome,) = mail.outbox
    assert welcome.to == ["new@example.org"]
    assert welcome.subject.startswith("Welcome: ") and len(welcome.subject) <= 70
    assert "Protein folding with sequence transformers" in welcome.body
    assert "WELCOME TO PAPER DIGEST" in welcome.body
    assert f"Your first regular digest arrives {expected_date}." in " ".join(welcome.body.split())
    row = Delivery.objects.get(subscriber=subscriber)
    assert row.status == Delivery.Status.SENT and row.issue.frequency == "welcome"
    # What the welcome carried is not sent again in the first regular issue.
    from digests.matching import rank_papers_for

    again = {r.paper.id for r in rank_papers_for(subscriber)}
    assert not again & set(row.paper_ids)


def test_nothing_strong_sends_no_welcome(client, worker, django_capture_on_commit_callbacks):
    make_papers()
    subscriber = sign_up(django_capture_on_commit_callbacks, ["lattice quantum chromodynamics"])
    confirm(client, subscriber, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert Delivery.objects.get(subscriber=subscriber).status == Delivery.Status.SKIPPED


def test_confirming_twice_queues_one_welcome(client, enqueued, django_capture_on_commit_callbacks):
    make_papers()
    subscriber = sign_up(django_capture_on_commit_callbacks, ["protein folding"])
    confirm(client, subscriber, django_capture_on_commit_callbacks)
    confirm(client, subscriber, django_capture_on_commit_callbacks)  # now active: shows preferences
    assert len(enqueued) == 1 and Delivery.objects.filter(subscriber=subscriber).count() == 1


@pytest.mark.parametrize(
    ("now", "zone", "frequency", "expected"),
    [
        # Wednesday 9 December 2026, 10:00 UTC: the next Monday 08:00 in Berlin.
        (
            dt.datetime(2026, 12, 9, 10, tzinfo=dt.UTC),
            "Europe/Berlin",
            "weekly",
            "Monday 14 December, around 08:00 Europe/Berlin",
        ),
        # Monday 07:30 Berlin (06:30 UTC): today's send is still ahead.
        (
            dt.datetime(2026, 12, 14, 6, 30, tzinfo=dt.UTC),
            "Europe/Berlin",
            "weekly",
            "Monday 14 December, around 08:00 Europe/Berlin",
        ),
        # Friday evening in New York, daily: no send at weekends, so Monday.
        (
            dt.datetime(2026, 12, 12, 1, tzinfo=dt.UTC),
            "America/New_York",
            "daily",
            "Monday 14 December, around 08:00 America/New_York",
        ),
        # Across the new year the year is said.
        (dt.datetime(2026, 12, 29, 10, tzinfo=dt.UTC), "UTC", "weekly", "Monday 4 January 2027, around 08:00 UTC"),
    ],
)
def test_next_issue_is_a_real_date_in_the_readers_zone(now, zone, frequency, expected):
    assert next_issue_text(Schedule(frequency, 0, 8, zone), now) == expected
