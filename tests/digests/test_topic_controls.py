"""A digest's topic controls, driven from the email: "less of this topic", "mute a word"
and "drop a topic" are pages whose GET changes nothing and whose POST changes the next
digest."""

import re

import pytest
from django.core import mail

from digests import delivery
from digests.matching import rank_papers_for
from digests.models import Delivery, Issue
from papers.models import Paper
from subscriptions.models import Feedback
from tests.digests.helpers import make_papers, make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    make_papers()
    subscriber = make_subscriber("reader@example.org", topics=["protein folding", "reinforcement learning"])
    row = Delivery.objects.create(
        issue=Issue.objects.create(frequency="weekly", period="2026-W48"), subscriber=subscriber
    )
    assert delivery.deliver_batch([row.id]).sent == [row.id]
    return subscriber


def controls_link(message, topic: str) -> str:
    section = message.body.split(f"== {topic} ==", 1)[1]
    return re.search(r"Less of this topic or mute a word: http://testserver(\S+)", section).group(1)


def drop_link(message, topic: str) -> str:
    return re.search(rf'Drop "{re.escape(topic)}": http://testserver(\S+)', message.body).group(1)


def new_paper(key, title, abstract):
    return Paper.objects.create(key=key, title=title, abstract=abstract, page_url=f"https://papers.example.org/{key}")


def next_titles(subscriber):
    return [r.paper.title for r in rank_papers_for(subscriber)]


def test_every_section_and_the_footer_link_to_the_topic_page_and_a_get_changes_nothing(client, reader):
    (message,) = mail.outbox
    html = message.alternatives[0][0]
    assert "Less of this topic" in html and "Mute a word" in html and "Drop a topic:" in html
    page = client.get(controls_link(message, "reinforcement learning"))
    assert page.status_code == 200
    text = page.content.decode()
    for button in ("Show me less of this", "Mute this word", "Drop “reinforcement learning”"):
        assert button in text
    assert Feedback.objects.count() == 0
    assert sorted(t.query for t in reader.topics.all()) == ["protein folding", "reinforcement learning"]


def test_less_of_this_topic_counts_the_sections_papers_against_it(client, reader):
    (message,) = mail.outbox
    path = controls_link(message, "reinforcement learning")
    papers = re.search(r"papers=([\d,]+)", path).group(1)
    response = client.post(path.split("?")[0], {"action": "less", "papers": papers})
    assert response.status_code == 200 and "Noted: 2 papers" in response.content.decode()
    votes = Feedback.objects.filter(subscriber=reader)
    topic = reader.topics.get(query="reinforcement learning")
    assert votes.count() == 2 and all(v.vote == -1 and v.topic_id == topic.id for v in votes)


def test_mute_a_word_leaves_out_papers_with_it_in_the_next_digest(client, reader):
    new_paper("rl-offline", "Offline reinforcement learning with diffusion critics", "Offline reinforcement learning.")
    new_paper("rl-online", "Online reinforcement learning for robot arms", "Reinforcement learning online.")
    assert {
        "Offline reinforcement learning with diffusion critics",
        "Online reinforcement learning for robot arms",
    } <= set(next_titles(reader))
    (message,) = mail.outbox
    path = controls_link(message, "reinforcement learning").split("?")[0]
    response = client.post(path, {"action": "mute", "word": "Offline"})
    assert "you now follow “reinforcement learning -offline”" in response.content.decode()
    titles = next_titles(reader)
    assert "Online reinforcement learning for robot arms" in titles
    assert "Offline reinforcement learning with diffusion critics" not in titles


def test_drop_a_topic_from_the_footer_in_one_step(client, reader):
    new_paper("rl-new", "Online reinforcement learning for robot arms", "Reinforcement learning online.")
    (message,) = mail.outbox
    response = client.post(drop_link(message, "reinforcement learning").split("#")[0].split("?")[0], {"action": "drop"})
    assert "you no longer follow “reinforcement learning”" in response.content.decode()
    assert [t.query for t in reader.topics.all()] == ["protein folding"]
    assert "Online reinforcement learning for robot arms" not in next_titles(reader)


def test_the_last_topic_cannot_be_dropped_and_bad_words_are_refused(client, reader):
    (message,) = mail.outbox
    rl = controls_link(message, "reinforcement learning").split("?")[0]
    protein = controls_link(message, "protein folding").split("?")[0]
    assert client.post(rl, {"action": "drop"}).status_code == 200
    refused = client.post(protein, {"action": "drop"})
    assert refused.status_code == 400 and "only thing you follow" in refused.content.decode()
    bad = client.post(protein, {"action": "mute", "word": "two words"})
    assert bad.status_code == 400 and "Type one word" in bad.content.decode()
    assert [t.query for t in reader.topics.all()] == ["protein folding"]


def test_a_forged_link_is_refused(client, reader):
    assert client.get("/manage/not-a-token/topic/1/").status_code == 400
