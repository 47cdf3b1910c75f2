"""The signed 👍/👎 links of a digest, clicked as a reader (or a mail scanner) would."""

import pytest
from django.urls import resolve, reverse

from digests.matching import rank_papers_for
from subscriptions import feedback_views as views
from subscriptions.links import FeedbackLinks
from subscriptions.models import Feedback, Subscriber, Subscription, Topic
from subscriptions.tokens import make_token
from tests.ranking_corpus import make_paper


@pytest.fixture
def reader(db):
    subscriber = Subscriber.objects.create(email="reader@example.com", status=Subscriber.Status.ACTIVE)
    topic = Topic.objects.create(query="video understanding")
    Subscription.objects.create(subscriber=subscriber, topic=topic)
    return subscriber


@pytest.fixture
def paper(db):
    return make_paper(key="p", title="Video <b>Understanding</b> & more", abstract="video understanding " * 5)


def path(url):
    return url.removeprefix("http://testserver")


def test_opening_the_link_records_nothing_and_the_button_records_the_vote(client, reader, paper):
    topic = Topic.objects.get()
    up, down = FeedbackLinks(reader.id).of(paper.id, topic.id)
    assert up.startswith("http://testserver/f/") and up != down
    for _ in range(2):  # a mail scanner, then the reader
        response = client.get(path(up))
        assert response.status_code == 200
    assert not Feedback.objects.exists()
    html = response.content.decode()
    assert 'name="vote" value="1"' in html and "Nothing is recorded until you press a button" in html
    assert "Video &lt;b&gt;Understanding&lt;/b&gt; &amp; more" in html  # markup shown as text
    assert "no-cache" in response["Cache-Control"]

    for _ in range(2):  # pressing twice changes nothing more
        response = client.post(path(up), {"vote": "1"})  # no CSRF cookie
        assert response.status_code == 200
    vote = Feedback.objects.get()
    assert (vote.subscriber_id, vote.paper_id, vote.vote, vote.topic_id) == (reader.id, paper.id, 1, topic.id)
    html = response.content.decode()
    assert "👍 more like this" in html and "Change to 👎" in html


def test_latest_vote_wins_and_the_button_changes_it(client, reader, paper):
    up, down = FeedbackLinks(reader.id).of(paper.id)
    client.post(path(up), {"vote": "1"})
    client.post(path(down), {"vote": "-1"})
    assert Feedback.objects.get().vote == -1
    response = client.post(path(down), {"vote": "1"})  # the page's "Change to 👍" button, no CSRF cookie
    assert response.status_code == 200
    assert Feedback.objects.get().vote == 1
    assert Feedback.objects.count() == 1


def test_a_digest_signs_one_token_for_all_its_links(reader, paper):
    links = FeedbackLinks(reader.id)
    (up, down), (other_up, _) = links.of(paper.id, 7), links.of(paper.id + 1)
    token = up.split("/")[4]
    assert {u.split("/")[4] for u in (down, other_up)} == {token}
    # The links are the feedback:vote URL, which is what the site serves.
    assert path(up) == reverse("feedback:vote", args=[token, paper.id, 7, "up"])
    assert path(other_up) == reverse("feedback:vote", args=[token, paper.id + 1, 0, "up"])
    match = resolve(path(down))
    assert match.func is views.feedback_vote
    assert match.kwargs == {"token": token, "paper": paper.id, "topic": 7, "vote": "down"}


def test_links_of_digests_sent_before_still_work(client, reader, paper):
    # Until this change each link had a token of its own, with the paper and vote inside.
    topic = Topic.objects.get()
    old_down = reverse("feedback:link", args=[make_token("feedback", reader.id, p=paper.id, v=-1, t=topic.id)])
    assert client.get(old_down).status_code == 200
    assert client.post(old_down, {"vote": "-1"}).status_code == 200
    vote = Feedback.objects.get()
    assert (vote.subscriber_id, vote.paper_id, vote.vote, vote.topic_id) == (reader.id, paper.id, -1, topic.id)
    # Such a token votes on its own paper only, whatever the path says.
    other = make_paper(key="q", title="Other", abstract="video " * 5)
    assert client.get(f"{old_down}{other.id}/0/up/").status_code == 400
    assert client.post(f"{old_down}{other.id}/0/up/", {"vote": "1"}).status_code == 400
    assert client.post(f"{old_down}{paper.id}/0/up/", {"vote": "1"}).status_code == 200
    assert Feedback.objects.get().vote == 1


def test_bad_links_and_probes_record_nothing(client, reader, paper):
    up, _ = FeedbackLinks(reader.id).of(paper.id)
    token = up.split("/")[4]
    assert client.get(path(up).replace(token, token[:-5] + "xxxxx")).status_code == 400
    assert client.get(path(up).replace("/up/", "/sideways/")).status_code == 400
    assert client.get(reverse("feedback:link", args=[token])).status_code == 400  # says whose, not what
    assert client.head(path(up)).status_code == 405
    assert client.post(path(up), {"vote": "7"}).status_code == 400
    assert client.post(path(up), {"vote": "up"}).status_code == 400
    paper.delete()
    assert client.get(path(up)).status_code == 400
    assert not Feedback.objects.exists()


def test_a_vote_moves_the_next_digest(client, reader, mode):
    from datetime import timedelta

    from django.utils import timezone

    from ranking.api import embed_papers

    new = {
        "sports": make_paper(
            key="sports",
            title="Video Understanding of Sports Games",
            abstract="video understanding for sports broadcasts: players, balls and goals in football games.",
        ),
        "cooking": make_paper(
            key="cooking",
            title="Video Understanding for Cooking Recipes",
            abstract="video understanding of kitchen videos: recipes, ingredients and cooking steps.",
        ),
    }
    earlier = {  # papers of an earlier digest, one like each new paper
        "sports": make_paper(
            key="football",
            title="Football Match Analysis",
            abstract="tracking football players, ball and goals in sports broadcasts.",
            days_ago=40,
        ),
        "cooking": make_paper(
            key="recipes",
            title="Cooking Recipes Analysis",
            abstract="recipes, ingredients and cooking steps in kitchens.",
            days_ago=40,
        ),
    }
    embed_papers([*new.values(), *earlier.values()])
    since = timezone.now() - timedelta(days=7)
    before = [r.paper.key for r in rank_papers_for(reader, since=since)]
    assert sorted(before) == ["cooking", "sports"]
    second = before[1]
    up, _ = FeedbackLinks(reader.id).of(earlier[second].id)
    client.post(path(up), {"vote": "1"})
    after = rank_papers_for(reader, since=since)
    assert [r.paper.key for r in after] == [second, before[0]]
    assert earlier[second].title in after[0].why
