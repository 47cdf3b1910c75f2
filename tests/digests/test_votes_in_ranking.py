"""A reader's 👍/👎, cast through the digest's vote links, as their next digest sees it:
evidence weighed in the section it was given in, never a veto."""

import pytest

from digests.matching import rank_for_subscribers
from subscriptions.links import FeedbackLinks
from subscriptions.models import Feedback, Subscriber, Subscription, Topic
from tests.ranking.votes_corpus import make_votes_corpus
from tests.ranking_corpus import make_paper


@pytest.fixture
def papers(db, mode):
    return make_votes_corpus()


def subscribe(email, *queries):
    subscriber = Subscriber.objects.create(email=email, status=Subscriber.Status.ACTIVE)
    for query in queries:
        topic, _ = Topic.objects.get_or_create(query=query)
        Subscription.objects.create(subscriber=subscriber, topic=topic)
    return subscriber


def vote(client, reader, paper, *, up, topic=None):
    """The reader's vote, as the vote page posts it."""
    link = FeedbackLinks(reader.id).of(paper.id, topic.id if topic else None)[0 if up else 1]
    response = client.post(link.removeprefix("http://testserver"), {"vote": "1" if up else "-1"})
    assert response.status_code == 200


def ranked(*readers):
    result = rank_for_subscribers(readers)
    return [{r.paper.key: r for r in result[reader.id]} for reader in readers]


def test_a_dislike_in_one_section_leaves_the_other_topic_alone(client, papers):
    speech, translation = "speech recognition", "machine translation"
    plain, voter = subscribe("p@example.com", speech, translation), subscribe("v@example.com", speech, translation)
    vote(client, voter, papers["translation-multilingual"], up=False, topic=Topic.objects.get(query=speech))
    assert Feedback.objects.get().topic.query == speech
    before, after = ranked(plain, voter)
    assert "translation-multilingual" not in after
    assert after["translation-document"].score == pytest.approx(before["translation-document"].score)
    assert after["translation-document"].topic == translation


def test_a_dislike_never_costs_the_reader_the_neighbours(client, papers):
    plain, voter = subscribe("p@example.com", "video understanding"), subscribe("v@example.com", "video understanding")
    topic = Topic.objects.get()
    vote(client, voter, papers["video-sparse"], up=False, topic=topic)
    vote(client, voter, papers["recsys"], up=False, topic=topic)
    before, after = ranked(plain, voter)
    assert {"video-qa", "video-memory", "video-egocentric"} <= set(after)
    assert len(after) >= len(before) - 1


def test_a_liked_paper_imported_again_under_another_key_is_not_shown(client, papers):
    reader = subscribe("r@example.com", "video understanding")
    vote(client, reader, papers["video-qa"], up=True, topic=Topic.objects.get())
    again = make_paper(key="2612.04242", title=papers["video-qa"].title, abstract=papers["video-qa"].abstract)
    from ranking.api import embed_papers

    embed_papers([again])
    (after,) = ranked(reader)
    assert "2612.04242" not in after and "video-qa" not in after
    assert "video-sparse" in after


def test_votes_come_with_their_section_and_date_in_a_fixed_number_of_queries(client, papers, django_assert_num_queries):
    readers = [subscribe(f"r{i}@example.com", "video understanding", "speech recognition") for i in range(3)]
    topic = Topic.objects.get(query="video understanding")
    for reader in readers:
        vote(client, reader, papers["video-sparse"], up=True, topic=topic)
        vote(client, reader, papers["speech-lowres"], up=False)
    rank_for_subscribers(readers)  # warm: index built, topic embeddings stored
    with django_assert_num_queries(4):  # fingerprint, topics, sent papers, votes
        result = rank_for_subscribers(readers)
    assert all("video-sparse" not in {r.paper.key for r in result[reader.id]} for reader in readers)


def test_one_readers_votes_never_reach_another_in_the_same_batch(client, papers):
    voter, quiet = subscribe("v@example.com", "video understanding"), subscribe("q@example.com", "video understanding")
    topic = Topic.objects.get()
    vote(client, voter, papers["video-sparse"], up=False, topic=topic)
    vote(client, voter, papers["video-qa"], up=True, topic=topic)
    alone = rank_for_subscribers([quiet])[quiet.id]
    batched = rank_for_subscribers([voter, quiet])[quiet.id]
    assert [(r.paper.key, r.score, r.why) for r in batched] == [(r.paper.key, r.score, r.why) for r in alone]
    assert "video-sparse" in {r.paper.key for r in batched}
