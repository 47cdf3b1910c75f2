import pytest
from django.conf import settings
from django.core import mail

from digests.models import Delivery, Issue
from subscriptions import previews, services
from subscriptions.models import Feedback, Subscriber, Topic

pytestmark = pytest.mark.django_db

SIGNUP = {
    "topics": ["Diffusion Models", "rl"],
    "authors": ["Ann Lee"],
    "frequency": "weekly",
    "weekday": 2,
    "timezone": "Europe/Berlin",
}


def _subscribe(capture, email="ada@example.org", **overrides):
    with capture(execute=True):
        return services.subscribe(email=email, **{**SIGNUP, **overrides})


def test_signup_stores_a_pending_subscriber_and_sends_only_the_confirmation(django_capture_on_commit_callbacks):
    outcome = _subscribe(django_capture_on_commit_callbacks, email="  Ada@Example.org ")
    assert outcome == services.SignupOutcome.CONFIRMATION_SENT
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "ada@example.org"
    assert subscriber.status == Subscriber.Status.PENDING
    assert (subscriber.weekday, subscriber.timezone, subscriber.authors) == (2, "Europe/Berlin", ["Ann Lee"])
    assert sorted(t.query for t in subscriber.topics.all()) == ["diffusion models", "rl"]
    assert subscriber.confirmation_sent_at is not None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.org"]
    assert message.subject == "Confirm your Paper Digest subscription"
    assert "/confirm/" in message.body
    assert "diffusion models" in message.body


def test_topics_are_shared_rows(django_capture_on_commit_callbacks):
    _subscribe(django_capture_on_commit_callbacks, email="a@example.org", topics=["RL"])
    _subscribe(django_capture_on_commit_callbacks, email="b@example.org", topics=["  rl "])
    assert list(Topic.objects.values_list("query", flat=True)) == ["rl"]
    assert Topic.objects.get().subscribers.count() == 2


def test_known_active_address_gets_the_manage_email_and_nothing_changes(django_capture_on_commit_callbacks):
    _subscribe(django_capture_on_commit_callbacks)
    subscriber = Subscriber.objects.get()
    services.confirm(subscriber)
    mail.outbox.clear()

    outcome = _subscribe(django_capture_on_commit_callbacks, topics=["something else"], frequency="daily")

    assert outcome == services.SignupOutcome.MANAGE_LINK_SENT
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.frequency == "weekly"
    assert sorted(t.query for t in subscriber.topics.all()) == ["diffusion models", "rl"]
    assert [m.subject for m in mail.outbox] == ["Your Paper Digest subscription"]
    assert "/manage/" in mail.outbox[0].body and "/unsubscribe/" in mail.outbox[0].body


def test_pending_address_signing_up_again_gets_a_new_confirmation_with_the_new_choice(
    django_capture_on_commit_callbacks,
):
    _subscribe(django_capture_on_commit_callbacks)
    _subscribe(django_capture_on_commit_callbacks, topics=["graphs"], frequency="daily")
    subscriber = Subscriber.objects.get()
    assert subscriber.frequency == "daily"
    assert [t.query for t in subscriber.topics.all()] == ["graphs"]
    assert not Topic.objects.filter(query="rl").exists()  # nobody follows it any more
    assert len(mail.outbox) == 2


def test_unsubscribed_address_must_opt_in_again(django_capture_on_commit_callbacks):
    _subscribe(django_capture_on_commit_callbacks)
    subscriber = Subscriber.objects.get()
    services.confirm(subscriber)
    services.unsubscribe(subscriber)
    mail.outbox.clear()
    _subscribe(django_capture_on_commit_callbacks)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING
    assert mail.outbox[0].subject == "Confirm your Paper Digest subscription"


def test_confirm_activates_only_a_pending_subscriber(django_capture_on_commit_callbacks):
    _subscribe(django_capture_on_commit_callbacks)
    subscriber = Subscriber.objects.get()
    assert services.confirm(subscriber) is True
    assert subscriber.status == Subscriber.Status.ACTIVE and subscriber.confirmed_at is not None
    assert services.confirm(subscriber) is False
    services.unsubscribe(subscriber)
    assert services.confirm(subscriber) is False  # an old link brings nobody back
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED


@pytest.mark.parametrize(
    "bad",
    [
        {"topics": [], "authors": []},
        {"frequency": "hourly"},
        {"weekday": 7},
        {"timezone": "Mars/Olympus"},
        {"timezone": "../../etc/passwd"},
        {"topics": [f"topic {i}" for i in range(21)]},
    ],
)
def test_subscribe_refuses_values_a_form_should_have_caught(bad):
    with pytest.raises(ValueError):
        services.subscribe(email="x@example.org", **{**SIGNUP, **bad})
    assert not Subscriber.objects.exists()


def test_update_pause_resume_unsubscribe(django_capture_on_commit_callbacks):
    _subscribe(django_capture_on_commit_callbacks)
    subscriber = Subscriber.objects.get()
    services.confirm(subscriber)
    services.update_preferences(
        subscriber, topics=["Graph Neural Networks"], authors=[], frequency="daily", weekday=0, timezone="Asia/Tokyo"
    )
    subscriber.refresh_from_db()
    assert (subscriber.frequency, subscriber.timezone, subscriber.authors) == ("daily", "Asia/Tokyo", [])
    assert [t.query for t in subscriber.topics.all()] == ["graph neural networks"]

    assert services.pause(subscriber) and subscriber.status == "paused"
    assert not services.pause(subscriber)
    assert services.resume(subscriber) and subscriber.status == "active"
    assert services.unsubscribe(subscriber) and subscriber.status == "unsubscribed"
    assert subscriber.unsubscribed_at is not None
    assert not services.unsubscribe(subscriber)
    assert not services.resume(subscriber) and subscriber.status == "unsubscribed"  # only a new confirmation


def test_delete_subscriber_data_removes_person_history_and_their_own_topics(
    django_capture_on_commit_callbacks, make_paper
):
    _subscribe(django_capture_on_commit_callbacks, email="a@example.org", topics=["shared", "mine only"])
    _subscribe(django_capture_on_commit_callbacks, email="b@example.org", topics=["shared"])
    ada = Subscriber.objects.get(email="a@example.org")
    paper = make_paper("A paper")
    Feedback.objects.create(subscriber=ada, paper=paper, vote=1, topic=Topic.objects.get(query="shared"))
    Delivery.objects.create(issue=Issue.objects.create(frequency="weekly", period="2026-W48"), subscriber=ada)

    services.delete_subscriber_data(ada)

    assert not Subscriber.objects.filter(email="a@example.org").exists()
    assert not Feedback.objects.exists() and not Delivery.objects.exists()
    assert list(Topic.objects.values_list("query", flat=True)) == ["shared"]
    assert Subscriber.objects.filter(email="b@example.org").exists()


def test_preview_ranks_this_weeks_papers_only(make_paper):
    make_paper("Diffusion models for video", "diffusion", days_old=1)
    make_paper("Old diffusion models paper", "diffusion", days_old=30)
    make_paper("Protein folding", "biology", days_old=1)
    papers = previews.preview_papers(["Diffusion Models"])
    assert [p.title for p in papers] == ["Diffusion models for video"]
    assert papers[0].url.startswith("https://") and papers[0].why
    assert previews.preview_papers([]) == []


def test_preview_never_returns_non_web_links(make_paper):
    paper = make_paper("Diffusion models", url="javascript:alert(1)")
    assert previews.preview_papers(["diffusion models"])[0].url == settings.SITE_URL + paper.get_absolute_url()


def test_a_failing_embedding_task_never_undoes_the_signup(db, monkeypatch, django_capture_on_commit_callbacks):
    from ranking import tasks

    def broker_down(queries):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.store_topic_embeddings, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(email="bo@example.org", topics=["graph networks"])
    assert Subscriber.objects.get().email == "bo@example.org"
