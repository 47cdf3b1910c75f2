"""The plain-text parts of the subscription emails read as a mail client shows them: the
paragraphs wrapped at 72 columns, each followed topic or author on a line of its own."""

import pytest
from django.core import mail

from subscriptions import notices, services
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db

LONG_TOPIC = "efficient attention mechanisms for very long context windows in large language models"


@pytest.fixture
def person():
    subscriber = Subscriber.objects.create(
        email="ada@example.org", frequency="weekly", weekday=0, timezone="Europe/Berlin", authors=["Mira Okonkwo"]
    )
    subscriber.topics.create(query="state space models")
    subscriber.topics.create(query=LONG_TOPIC)
    return subscriber


def _text(send, subscriber, **kwargs) -> list[str]:
    mail.outbox.clear()
    send(subscriber, **kwargs)
    return mail.outbox[0].body.splitlines()


def _first_item(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith("  - "))


def _assert_reads_well(lines: list[str]) -> None:
    for line in lines:
        assert len(line) <= 72 or line.startswith("http"), line
        assert line == line.rstrip(), repr(line)
    assert "  - state space models" in lines
    assert "  - papers by Mira Okonkwo" in lines
    listed = [line for line in lines if line.startswith("  - efficient")]
    assert len(listed) == 1, lines  # the long topic wraps under itself, indented
    continued = lines[lines.index(listed[0]) + 1]
    assert continued.startswith("    ") and (listed[0][4:] + " " + continued.strip()) == LONG_TOPIC


def test_the_confirmation_email_lists_each_topic_on_its_own_line(person):
    lines = _text(notices.send_confirmation_email, person)
    _assert_reads_well(lines)
    assert lines[_first_item(lines) - 1].endswith("on:")


@pytest.mark.parametrize("status", [Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED, Subscriber.Status.UNSUBSCRIBED])
@pytest.mark.parametrize("asked_for_link", [False, True])
def test_the_manage_email_lists_each_topic_on_its_own_line(person, status, asked_for_link):
    Subscriber.objects.filter(pk=person.pk).update(status=status)
    person.refresh_from_db()
    lines = _text(notices.send_manage_email, person, asked_for_link=asked_for_link)
    _assert_reads_well(lines)
    paragraph = " ".join(lines[2 : _first_item(lines)])
    assert paragraph.endswith("on:" if status != Subscriber.Status.UNSUBSCRIBED else "It followed:")
    assert ("paused at the moment" in paragraph) == (status == Subscriber.Status.PAUSED)
    assert ("already subscribed" in paragraph) == (status != Subscriber.Status.UNSUBSCRIBED and not asked_for_link)
    last = "Didn't ask? Nothing has changed" if asked_for_link else "Didn't try to sign up? Nothing has changed"
    assert any(line.startswith(last) for line in lines)


def test_a_signup_of_a_known_address_mails_the_wrapped_manage_text(person, django_capture_on_commit_callbacks):
    Subscriber.objects.filter(pk=person.pk).update(status=Subscriber.Status.ACTIVE)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(email="ada@example.org", topics=["rl"], frequency="weekly", weekday=0, timezone="UTC")
    (sent,) = mail.outbox
    lines = sent.body.splitlines()
    assert "  - state space models" in lines
    assert all(len(line) <= 72 or line.startswith("http") for line in lines)
