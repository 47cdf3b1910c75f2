"""A subscriber's own data export (JSON), linked from the preferences page beside delete-my-data."""

import json

import pytest
from django.utils import timezone

from digests.models import Delivery, Issue
from papers.models import Paper
from subscriptions.links import preferences_url
from subscriptions.models import Feedback, Subscriber, Subscription, Topic
from subscriptions.tokens import make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    subscriber = Subscriber.objects.create(
        email="ada@example.org", status="active", confirmed_at=timezone.now(), authors=["Mira Okonkwo"]
    )
    topic = Topic.objects.create(query="protein folding")
    Subscription.objects.create(subscriber=subscriber, topic=topic)
    paper = Paper.objects.create(key="2611.00001", title="Folding fast", first_seen_at=timezone.now())
    Feedback.objects.create(subscriber=subscriber, paper=paper, topic=topic, vote=1)
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    Delivery.objects.create(
        issue=issue, subscriber=subscriber, status="sent", sent_at=timezone.now(), paper_ids=[paper.id]
    )
    Subscriber.objects.create(email="someone-else@example.org", status="active")
    return subscriber


def test_the_preferences_page_links_to_the_data_export_beside_delete(client, reader):
    page = client.get(preferences_url(reader)).content.decode()

    assert "Download my data (JSON)" in page
    assert page.index("Delete my data") < page.index("Download my data")


def test_the_export_holds_everything_about_the_person_and_nobody_else(client, reader):
    page = client.get(preferences_url(reader)).content.decode()
    link = page.split('data-testid="my-data"')[0].rsplit('href="', 1)[1].split('"')[0]

    response = client.get(link)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="my-paper-digest-data.json"'
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    data = json.loads(response.content)
    assert data["subscriber"]["email"] == "ada@example.org"
    assert data["authors"] == ["Mira Okonkwo"]
    assert [topic["query"] for topic in data["topics"]] == ["protein folding"]
    assert data["feedback"][0] | {"at": None} == {
        "paper": "2611.00001",
        "title": "Folding fast",
        "vote": "up",
        "at": None,
    }
    assert [(d["issue"], d["status"]) for d in data["digests"]] == [("weekly 2026-W48", "sent")]
    assert "someone-else" not in response.content.decode()


def test_a_bad_or_wrong_purpose_token_gets_nothing(client, reader):
    assert client.get("/manage/not-a-token/my-data.json").status_code == 404
    unsubscribe_token = make_token("unsubscribe", reader.id)
    assert client.get(f"/manage/{unsubscribe_token}/my-data.json").status_code == 404


def test_the_export_changes_nothing(client, reader):
    before = Subscriber.objects.values().get(id=reader.id)
    client.get(preferences_url(reader).rstrip("/") + "/my-data.json")
    assert Subscriber.objects.values().get(id=reader.id) == before
