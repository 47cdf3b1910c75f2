"""rank_for_subscribers: what the delivery pipeline asks the ranking, one batch at a time."""

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from digests.matching import rank_for_subscribers, rank_papers_for
from digests.models import Delivery, Issue
from ranking import ranker, semantic, store
from ranking.api import embed_papers
from ranking.models import QueryEmbedding
from ranking.ranker import parsed
from subscriptions.models import Feedback, Subscriber, Subscription, Topic
from tests.ranking_corpus import make_paper


def subscribe(email, *queries, authors=()):
    subscriber = Subscriber.objects.create(email=email, status=Subscriber.Status.ACTIVE, authors=list(authors))
    for query in queries:
        topic, _ = Topic.objects.get_or_create(query=query)
        Subscription.objects.create(subscriber=subscriber, topic=topic)
    return subscriber


def deliver(subscriber, papers, *, period, status=Delivery.Status.SENT):
    issue, _ = Issue.objects.get_or_create(frequency="weekly", period=period)
    return Delivery.objects.create(issue=issue, subscriber=subscriber, status=status, paper_ids=[p.id for p in papers])


def keys(ranked):
    return [r.paper.key for r in ranked]


def test_union_of_topics_and_why(corpus):
    reader = subscribe("a@example.com", "video understanding", "speech recognition")
    ranked = rank_for_subscribers([reader])[reader.id]
    assert keys(ranked)[:1] in (["video-understanding"], ["speech"])
    assert {"video-understanding", "speech"} <= set(keys(ranked))
    by_key = {r.paper.key: r for r in ranked}
    topic = Topic.objects.get(query="speech recognition")
    assert by_key["speech"].topic == "speech recognition"
    assert by_key["speech"].topic_id == topic.id
    assert "speech recognition" in by_key["speech"].why
    assert "popular-offtopic" not in by_key


def test_no_paper_is_sent_twice(corpus):
    reader = subscribe("a@example.com", "video")
    first = rank_papers_for(reader)
    assert "video-understanding" in keys(first)
    deliver(reader, [corpus["video-understanding"]], period="2026-W40")
    deliver(reader, [corpus["video-diffusion"]], period="2026-W41", status=Delivery.Status.FAILED)
    again = keys(rank_papers_for(reader))
    assert "video-understanding" not in again
    assert "video-diffusion" in again  # that copy was never sent


def test_nothing_relevant_means_an_empty_list(corpus):
    reader = subscribe("a@example.com", "lattice quantum chromodynamics")
    nobody = subscribe("b@example.com")
    result = rank_for_subscribers([reader, nobody])
    assert result == {reader.id: [], nobody.id: []}


def test_followed_authors_first(corpus):
    reader = subscribe("a@example.com", "speech recognition", authors=["Mei Tanaka", "lovelace"])
    ranked = rank_papers_for(reader)
    assert set(keys(ranked)[:2]) == {"video-understanding", "protein"}
    assert keys(ranked)[2] == "speech"
    assert all("whom you follow" in r.why for r in ranked[:2])


def test_at_most_the_configured_number(corpus, settings):
    settings.DIGEST_MAX_PAPERS = 2
    reader = subscribe("a@example.com", "cat:cs.CV", "cat:cs.CL")
    assert len(rank_papers_for(reader)) == 2
    assert len(rank_papers_for(reader, limit=50)) == 6  # capped at 20; six papers match


def test_feedback_moves_the_ranking(corpus):
    """Two inference papers; liking a quantization paper lifts quantization, disliking
    it sinks it (with or without sentence embeddings). One vote is weak evidence: it
    moves scores, and the order only as far as they cross."""
    liked_earlier = make_paper(
        key="int4",
        title="Four-Bit Quantization of Transformer Weights",
        abstract="Post-training quantization of transformer weights to four bits with per-channel scales keeps "
        "accuracy while cutting memory.",
        days_ago=60,
    )
    from ranking.api import embed_papers

    embed_papers([liked_earlier])
    topic = "language model inference"
    neutral = subscribe("n@example.com", topic)
    fan = subscribe("fan@example.com", topic)
    critic = subscribe("critic@example.com", topic)
    Feedback.objects.create(subscriber=fan, paper=liked_earlier, vote=1)
    Feedback.objects.create(subscriber=critic, paper=liked_earlier, vote=-1)

    result = rank_for_subscribers([neutral, fan, critic])

    def order(subscriber):
        ranked = keys(result[subscriber.id])
        return ranked.index("quantization") if "quantization" in ranked else len(ranked)

    assert {"quantization", "speculative"} <= set(keys(result[neutral.id]))
    assert order(fan) <= order(neutral) <= order(critic)
    scores = {s.id: {r.paper.key: r.score for r in result[s.id]} for s in (neutral, fan, critic)}
    assert scores[fan.id]["quantization"] > scores[neutral.id]["quantization"]
    assert scores[critic.id].get("quantization", 0.0) < scores[neutral.id]["quantization"]
    fan_quant = next(r for r in result[fan.id] if r.paper.key == "quantization")
    assert "Four-Bit Quantization of Transformer Weights" in fan_quant.why
    assert "int4" not in keys(result[fan.id])  # voted papers are not sent again


def test_each_distinct_topic_is_scored_once(corpus, monkeypatch):
    seen = []
    original = ranker.score_topics

    def spy(index, refs, config=None):
        seen.append(sorted(r.query for r in refs))
        return original(index, refs, config)

    monkeypatch.setattr(ranker, "score_topics", spy)
    readers = [subscribe(f"r{i}@example.com", "video understanding", "speech recognition") for i in range(5)]
    readers.append(subscribe("x@example.com", "speech recognition"))
    result = rank_for_subscribers(readers)
    assert seen == [["speech recognition", "video understanding"]]
    assert all(keys(result[r.id]) for r in readers)


def _batch(size, corpus):
    readers = []
    for i in range(size):
        reader = subscribe(f"b{size}-{i}@example.com", "video understanding", f"speech recognition {i % 2}")
        deliver(reader, [corpus["video-diffusion"]], period=f"2026-W{size:02d}")
        Feedback.objects.create(subscriber=reader, paper=corpus["robots"], vote=1 if i % 2 else -1)
        readers.append(reader)
    return readers


def test_fixed_number_of_queries_whatever_the_batch_size(corpus, django_assert_num_queries):
    small, large = _batch(2, corpus), _batch(12, corpus)
    rank_for_subscribers(small + large)  # warm: the paper index is built and topic embeddings stored
    # Fingerprint of the paper set, topics, sent papers, feedback (the returned papers
    # were loaded by the first call: once per index).
    with django_assert_num_queries(4):
        result = rank_for_subscribers(small)
    with django_assert_num_queries(4):
        result.update(rank_for_subscribers(large))
    assert all("video-diffusion" not in keys(result[r.id]) for r in small + large)


def test_shown_papers_are_loaded_once_per_index_and_follow_changes(corpus, django_assert_num_queries):
    from papers.models import Paper

    reader = subscribe("shown@example.com", "video understanding")
    first = rank_for_subscribers([reader])[reader.id]
    assert first
    with django_assert_num_queries(4):  # fingerprint, topics, sent papers, feedback: no paper query
        again = rank_for_subscribers([reader])[reader.id]
    assert [r.paper.id for r in again] == [r.paper.id for r in first]
    top, before = first[0].paper, first[0].paper.upvotes
    Paper.objects.filter(id=top.id).update(upvotes=before + 500)  # upvotes move without updated_at
    shown = {r.paper.id: r.paper for r in rank_for_subscribers([reader])[reader.id]}
    assert shown[top.id].upvotes == before + 500
    paper = Paper.objects.get(id=top.id)
    paper.title = paper.title + " (revised)"
    paper.save()  # a changed paper changes the index's fingerprint: loaded again
    shown = {r.paper.id: r.paper for r in rank_for_subscribers([reader])[reader.id]}
    assert shown[top.id].title.endswith("(revised)")


def test_cold_start_query_count_does_not_grow_with_the_batch(corpus):
    from ranking import index

    counts = []
    for size in (1, 8):
        readers = _batch(size, corpus)
        index.clear_cache()
        QueryEmbedding.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            rank_for_subscribers(readers)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_topic_embeddings_are_stored_once(corpus, mode):
    reader = subscribe("a@example.com", "video understanding")
    rank_papers_for(reader)
    stored = store.stored_query_vectors(["video understanding"])
    if mode == "lexical":
        assert stored == {}
    else:
        vector = stored["video understanding"]
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
        assert QueryEmbedding.objects.count() == 1


@pytest.fixture
def with_model(monkeypatch):
    monkeypatch.setattr(semantic, "_availability", None)
    assert semantic.is_available()


def test_new_topics_are_embedded_after_signup_and_ranking_then_encodes_nothing(
    db, with_model, monkeypatch, django_capture_on_commit_callbacks
):
    from subscriptions import services as subscriptions

    embed_papers([make_paper(key="v", title="Video understanding at scale", abstract="Models that watch long videos.")])
    with django_capture_on_commit_callbacks(execute=True):
        subscriptions.subscribe(email="ada@example.org", topics=["long video models", '"protein" folding -rna'])
    topics = {t.query: t for t in Topic.objects.all()}
    assert set(topics) == {"long video models", '"protein" folding -rna'}
    stored = {q: store.stored_query_vectors([parsed(q).free_text]).get(parsed(q).free_text) for q in topics}
    assert all(v is not None for v in stored.values())  # by the task, right after the signup committed
    expected = semantic.encode(["long video models"])[0]
    assert float(stored["long video models"] @ expected) > 0.999

    semantic._query_cache.clear()
    monkeypatch.setattr(semantic, "encode", lambda texts: pytest.fail(f"encoded again: {texts}"))
    subscriber = Subscriber.objects.get()
    ranked = rank_for_subscribers([subscriber])[subscriber.id]
    assert [r.paper.key for r in ranked] == ["v"]
