"""Signed links as an attacker holding an old one would use them: an old manage or
confirmation link brings nobody back, a confirm link mints nothing, and "Lost your link?"
answers the same for every address."""

import re

import pytest
from django.core import mail

from subscriptions import services
from subscriptions.links import confirm_url, preferences_url
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


@pytest.fixture
def subscribed(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(email="ada@example.org", topics=["protein folding"])
    subscriber = Subscriber.objects.get()
    first_confirmation = path_of(confirm_url(subscriber))
    services.confirm(subscriber)
    mail.outbox.clear()
    return subscriber, first_confirmation


@pytest.mark.parametrize("gone", ["unsubscribe", "bounce"])
def test_coming_back_takes_a_fresh_confirmation_email(client, subscribed, gone, django_capture_on_commit_callbacks):
    subscriber, old_confirmation = subscribed
    manage = path_of(preferences_url(subscriber))
    if gone == "unsubscribe":
        services.unsubscribe(subscriber)
    else:
        Subscriber.objects.filter(id=subscriber.id).update(status=Subscriber.Status.BOUNCED)

    client.post(manage, {"action": "resume"})  # the old manage link's button
    subscriber.refresh_from_db()
    assert subscriber.status in (Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.BOUNCED)

    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(manage, {"action": "subscribe-again"})
    assert b"Check your inbox" in page.content
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING  # no digest until the mailbox confirms
    (confirmation,) = mail.outbox
    fresh = re.search(r"http://testserver(/confirm/\S+/)", confirmation.body).group(1)

    replaced = client.post(old_confirmation)  # an earlier confirmation email's link
    assert b"This link was replaced" in replaced.content
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING

    client.post(fresh)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE


def test_a_confirm_link_of_an_active_subscriber_mints_no_manage_link(client, subscribed):
    subscriber, _ = subscribed
    link = path_of(confirm_url(subscriber))
    for response in (client.get(link), client.post(link)):
        assert response.status_code == 200
        html = response.content.decode()
        assert "Already confirmed" in html
        assert "/manage/" not in html.replace('href="/manage/"', "")  # only the "Lost your link?" form
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE


def _lost_link(client, email, captured):
    with captured(execute=True):
        return client.post("/manage/", {"email": email, "website": ""})


def test_lost_link_answers_the_same_whatever_the_address(client, subscribed, django_capture_on_commit_callbacks):
    subscriber, _ = subscribed
    assert client.get("/manage/").status_code == 200
    Subscriber.objects.create(email="pending@example.org")  # never confirmed
    answers = {}
    for email in ("ada@example.org", "nobody@example.org", "pending@example.org"):
        response = _lost_link(client, email, django_capture_on_commit_callbacks)
        assert response.status_code == 200
        answers[email] = response.content.decode().replace(email, "ADDRESS")
    assert len(set(answers.values())) == 1
    (sent,) = mail.outbox
    assert sent.to == ["ada@example.org"]
    words = " ".join(sent.body.split())  # as read, whatever the wrapping
    assert "asked for a link to this address's Paper Digest preferences" in words
    assert "tried to sign up" not in words and "You are subscribed" in words
    manage = re.search(r"http://testserver(/manage/\S+/)", sent.body).group(1)
    # The link opens this subscriber's preferences (compared by where it leads: a token made
    # here a second later would differ in its signed timestamp).
    preferences = client.get(manage)
    assert preferences.status_code == 200 and "ada@example.org" in preferences.content.decode()
    assert manage.split("/")[2].split(":")[0] == path_of(preferences_url(subscriber)).split("/")[2].split(":")[0]


def test_lost_link_of_an_unsubscribed_address_says_so(client, subscribed, django_capture_on_commit_callbacks):
    subscriber, _ = subscribed
    services.unsubscribe(subscriber)
    _lost_link(client, "ada@example.org", django_capture_on_commit_callbacks)
    (sent,) = mail.outbox
    assert "This address is not subscribed at the moment" in sent.body
    assert "You are" not in sent.body


def test_lost_link_cannot_flood_a_mailbox(client, subscribed, django_capture_on_commit_callbacks, settings):
    settings.SIGNUP_RATE_PER_ADDRESS = "3/h"
    settings.SIGNUP_RATE_PER_IP = "5/h"
    answers = [_lost_link(client, "ada@example.org", django_capture_on_commit_callbacks) for _ in range(5)]
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1  # same answer; mail stops after 3
    assert len(mail.outbox) == 3
    assert _lost_link(client, "someone@example.org", django_capture_on_commit_callbacks).status_code == 429
    bad = client.post("/manage/", {"email": "not an address"})
    assert bad.status_code == 400 and b"Enter a valid email address" in bad.content


def test_rotating_the_secret_key_keeps_old_links_only_while_they_are_fallbacks(client, subscribed, settings):
    subscriber, _ = subscribed
    manage = path_of(preferences_url(subscriber))
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert client.get(manage).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []  # the old key leaked: every link signed with it stops working
    assert client.get(manage).status_code == 400
