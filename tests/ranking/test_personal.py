"""Votes and example papers as evidence (``ranking.personal``): they move papers in
proportion to similarity, never delete a strong match, never invent relevance, and a
paper a reader voted on never comes back, not even under another key."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ranking import personal
from ranking.api import Request, TopicRef, Vote, embed_papers, rank_requests, rank_topics
from tests.ranking.votes_corpus import make_votes_corpus
from tests.ranking_corpus import make_paper

VIDEO = "video understanding"


@pytest.fixture
def papers(db, mode):
    return make_votes_corpus()


def rank(*requests, limit=10):
    return rank_requests(list(requests), limit=limit)


def keys(ranked):
    return [r.paper.key for r in ranked]


def scores(ranked):
    return {r.paper.key: r.score for r in ranked}


def test_a_dislike_never_removes_the_topics_strong_matches(papers):
    plain = Request(key="plain", topics=[TopicRef(VIDEO, 1)])
    critic = Request(key="critic", topics=[TopicRef(VIDEO, 1)], votes=[Vote(papers["video-sparse"].id, -1, 1)])
    result = rank(plain, critic)
    others = {"video-qa", "video-memory", "video-egocentric"}
    assert others <= set(keys(result["plain"]))
    assert others <= set(keys(result["critic"]))  # neighbours of the disliked paper stay
    assert "video-sparse" not in keys(result["critic"])
    assert len(result["critic"]) >= len(result["plain"]) - 1


def test_many_dislikes_of_its_neighbours_never_remove_a_strong_match(papers):
    plain = Request(key="plain", topics=[TopicRef(VIDEO, 1)])
    disliked = [papers[key].id for key in ("video-sparse", "video-qa", "recsys")]
    critic = Request(key="critic", topics=[TopicRef(VIDEO, 1)], votes=[Vote(i, -1, 1) for i in disliked])
    result = rank(plain, critic)
    kept = {"video-memory", "video-egocentric"} & set(keys(result["plain"]))
    assert kept and kept <= set(keys(result["critic"]))


def test_however_heavy_the_dislikes_the_texts_strong_matches_stay(papers, monkeypatch):
    monkeypatch.setattr(personal, "DISLIKE_WEIGHT", 5.0)
    plain = Request(key="plain", topics=[TopicRef(VIDEO, 1)])
    critic = Request(key="critic", topics=[TopicRef(VIDEO, 1)], votes=[Vote(papers["video-sparse"].id, -1, 1)])
    result = rank(plain, critic)
    assert set(keys(result["plain"])) - {"video-sparse"} <= set(keys(result["critic"]))


def test_a_dislike_counts_in_the_section_it_was_given_in(papers):
    """A 👎 in the speech section on a translation paper says "not for speech": the
    translation topic's papers keep their place and score."""
    topics = [TopicRef("speech recognition", 1), TopicRef("machine translation", 2)]
    plain = Request(key="plain", topics=topics)
    voted = Request(key="voted", topics=topics, votes=[Vote(papers["translation-multilingual"].id, -1, 1)])
    everywhere = Request(key="everywhere", topics=topics, disliked_ids=[papers["translation-multilingual"].id])
    result = rank(plain, voted, everywhere)
    before, after = scores(result["plain"]), scores(result["voted"])
    assert after["translation-document"] == pytest.approx(before["translation-document"])
    assert {r.paper.key: r.topic for r in result["voted"]}["translation-document"] == "machine translation"
    assert scores(result["everywhere"])["translation-document"] < before["translation-document"]
    assert "translation-multilingual" not in after


# Papers on the topic's subject that the topic's words catch only weakly: under the cut
# of "video understanding" by the text alone, in both ranking modes.
BORDERLINE = [
    dict(
        key="clips",
        title="Answering Questions about Events in Hour-Long Clips",
        abstract="Temporal reasoning over hour-long clips: a model tracks events across frames and answers "
        "questions about what happens when, for video archives and video lectures.",
    ),
    dict(
        key="frames",
        title="Tracking Events across Frames for Question Answering",
        abstract="We answer questions about long recordings by tracking events across frames with temporal "
        "reasoning; the recordings are surveillance video and sports broadcasts.",
    ),
]


@pytest.fixture
def borderline(papers):
    made = {spec["key"]: make_paper(**spec) for spec in BORDERLINE}
    embed_papers(list(made.values()))
    return {**papers, **made}


def test_likes_bring_in_borderline_papers_like_them_after_the_texts_strong_matches(borderline):
    papers = borderline
    liked = [papers["video-qa"].id, papers["video-sparse"].id]
    plain = Request(key="plain", topics=[TopicRef(VIDEO, 1)])
    fan = Request(key="fan", topics=[TopicRef(VIDEO, 1)], votes=[Vote(i, 1, 1) for i in liked])
    off = Request(key="off", topics=[TopicRef(VIDEO, 1)], votes=[Vote(papers["robots-legged"].id, 1, 1)])
    result = rank(plain, fan, off)
    assert not {"clips", "frames"} & set(keys(result["plain"]))
    strong = [k for k in keys(result["plain"]) if k not in ("video-qa", "video-sparse")]
    assert set(keys(result["fan"])[: len(strong)]) == set(strong)  # the text's strong matches first
    assert {"clips", "frames"} & set(keys(result["fan"])[len(strong) :])  # brought in by the likes, after them
    for key in strong:  # their scores say what the likes add; the order stays the text's
        assert scores(result["fan"])[key] >= scores(result["plain"])[key] - 1e-6
    assert "robots-quadruped" not in keys(result["off"])  # very like the liked paper, but not about video
    assert keys(result["off"]) == keys(result["plain"])


def test_a_like_lifts_papers_in_its_own_section_fully_and_in_others_at_half_weight():
    """On made-up numbers: the same borderline relevance in two topics; the 👍 was given
    in the first topic's section."""

    class Similarity:
        index = type("Index", (), {"size": 1, "row_of": {}})()
        column_of = {10: 0}
        known = {10}
        cosine = np.array([[0.8]], dtype=np.float32)
        alike = cosine
        gram = np.eye(1, dtype=np.float32)
        scaled = staticmethod(lambda c: np.clip(c, 0, 1).astype(np.float32))
        near_centroid = personal.VoteSimilarity.near_centroid

        def liked_words(self, cols, weights):  # no words in common: the centroids alone
            return np.zeros(self.index.size, dtype=np.float32)

        def nearest(self, cols, weights, unavailable):  # nor the nearest-paper rule
            return np.zeros(self.index.size, dtype=np.float32), np.full(self.index.size, -1)

    block = np.array([[0.3], [0.3]], dtype=np.float32)
    moved = personal.personalise(block, [1, 2], [Vote(10, 1, 1)], Similarity(), floor=0.15).relevance
    own, other = moved[0, 0] - 0.3, moved[1, 0] - 0.3
    assert own == pytest.approx(personal.LIKE_WEIGHT * 0.5 * 0.8)  # trust 1 / (1 + PRIOR_VOTES)
    assert 0 < other < own


def test_example_papers_bring_in_the_topics_other_papers_like_them(borderline):
    papers = borderline
    plain = rank_topics([VIDEO])
    examples = [papers["video-sparse"].id, papers["video-qa"].id]
    seeded = rank_topics([VIDEO], example_paper_ids=examples)
    assert "video-sparse" not in keys(seeded) and "video-qa" not in keys(seeded)
    strong = [k for k in keys(plain) if k not in ("video-sparse", "video-qa")]
    assert set(keys(seeded)[: len(strong)]) == set(strong)
    brought = [r for r in seeded[len(strong) :] if r.paper.key in ("clips", "frames")]
    assert brought and not {"clips", "frames"} & set(keys(plain))
    assert "close to" in brought[0].why.lower()  # says which example it is like


def test_the_same_paper_under_another_key_never_comes_back(papers):
    """Liked as a title-keyed row two months ago, imported again under its arXiv id:
    the new row is the paper the reader liked, so it is not shown to them."""
    old = make_paper(
        key="title:abc",
        title="Video Understanding at Scale with Token Merging",
        abstract="Token merging makes video understanding of long videos cheap; we answer questions about video.",
        days_ago=60,
    )
    again = make_paper(key="2612.00001", title=old.title, abstract=old.abstract + " (v2)", days_ago=1)
    survey = dict(abstract=old.abstract, doi="10.1/x")
    sent_old = make_paper(key="doi:10.1/x", title="Video Understanding Survey", days_ago=60, **survey)
    sent_new = make_paper(key="2612.00002", title="A Survey of Video Understanding", **survey)
    embed_papers([old, again, sent_old, sent_new])
    since = datetime.now(UTC) - timedelta(days=7)
    fan = Request(key="fan", topics=[TopicRef(VIDEO, 1)], votes=[Vote(old.id, 1, 1)], exclude_ids={sent_old.id})
    plain = Request(key="plain", topics=[TopicRef(VIDEO, 1)])
    for window in (since, None):
        result = rank_requests([fan, plain], since=window, limit=20)
        shown = set(keys(result["plain"]))  # one row of each pair, at least (near-duplicates may collapse)
        assert {"2612.00001", "title:abc"} & shown and {"2612.00002", "doi:10.1/x"} & shown
        assert not {"2612.00001", "2612.00002", "title:abc", "doi:10.1/x"} & set(keys(result["fan"]))


def test_recent_votes_weigh_more():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    fresh = personal.weight_of(Vote(1, -1, at=now - timedelta(days=1)), now)
    old = personal.weight_of(Vote(1, -1, at=now - timedelta(days=personal.HALF_LIFE_DAYS)), now)
    assert fresh > 0.99 and old == pytest.approx(0.5)
    assert personal.weight_of(Vote(1, 1), now) == 1.0  # an example paper counts as given now


def test_a_recent_dislike_sinks_more_than_an_old_one(papers):
    now = datetime.now(UTC)
    disliked = papers["video-sparse"].id
    old = Request(key="old", topics=[TopicRef(VIDEO, 1)], votes=[Vote(disliked, -1, 1, now - timedelta(days=400))])
    new = Request(key="new", topics=[TopicRef(VIDEO, 1)], votes=[Vote(disliked, -1, 1, now)])
    plain = Request(key="plain", topics=[TopicRef(VIDEO, 1)])
    result = {key: scores(ranked) for key, ranked in rank(old, new, plain).items()}
    near = "video-qa"
    assert result["new"][near] <= result["old"][near] <= result["plain"][near]
    assert result["new"][near] < result["plain"][near]


def test_a_paper_matching_nothing_is_never_lifted():
    """On made-up numbers: a paper like the liked one is lifted, unless it hardly
    matches the topic at all."""

    class Similarity:
        index = type("Index", (), {"size": 3, "row_of": {}})()
        column_of = {10: 0, 11: 1}
        known = {10, 11}
        cosine = np.array([[0.9, 0.0], [0.0, 1.0], [0.1, 1.0]], dtype=np.float32)
        alike = cosine
        gram = np.eye(2, dtype=np.float32)
        scaled = staticmethod(lambda c: np.clip(c, 0, 1).astype(np.float32))
        near_centroid = personal.VoteSimilarity.near_centroid

        def liked_words(self, cols, weights):  # no words in common: the centroids alone
            return np.zeros(self.index.size, dtype=np.float32)

        def nearest(self, cols, weights, unavailable):  # nor the nearest-paper rule
            return np.zeros(self.index.size, dtype=np.float32), np.full(self.index.size, -1)

    block = np.array([[0.9, 0.16, 0.01]], dtype=np.float32)
    votes = [Vote(10, -1, 1), Vote(11, 1, 1)]
    moved = personal.personalise(block, [1], votes, Similarity(), floor=0.15).relevance[0]
    assert moved[0] < block[0, 0]  # very like the disliked paper: lower
    assert moved[1] > block[0, 1]  # like the liked paper: lifted
    assert moved[2] <= block[0, 2]  # like the liked paper, but matches nothing: not lifted


def test_older_rows_of_the_same_papers_are_found_a_chunk_at_a_time(db, monkeypatch):
    from ranking import index

    monkeypatch.setattr(index, "IDENTITY_CHUNK", 1)
    by_title = make_paper(key="title:old", title="Token Merging for Video", abstract="video", days_ago=60)
    by_doi = make_paper(key="doi:10.2/y", title="Old Title", abstract="video", doi="10.2/y", days_ago=60)
    make_paper(key="2612.1", title="Token Merging for Video", abstract="video")
    make_paper(key="2612.2", title="New Title", abstract="video", doi="10.2/y")
    make_paper(key="2612.3", title="Unrelated", abstract="video")
    built = index.get_index(datetime.now(UTC) - timedelta(days=7))
    assert set(built.identities_elsewhere) == {by_title.id, by_doi.id}
    assert built.rows_same_as([by_title.id, by_doi.id]).sum() == 2


def test_a_vote_on_a_paper_that_no_longer_exists_is_ignored(papers):
    plain = Request(key="plain", topics=[TopicRef(VIDEO, 1)])
    ghost = Request(key="ghost", topics=[TopicRef(VIDEO, 1)], votes=[Vote(10**9, -1, 1), Vote(10**9 + 1, 1)])
    result = rank(plain, ghost)
    assert [(r.paper.key, r.score) for r in result["ghost"]] == [(r.paper.key, r.score) for r in result["plain"]]


def test_papers_like_the_examples_keep_their_turn_and_come_after_the_topics(borderline):
    """A paper strong only by its likeness to an example paper (no topic) is listed
    after the topics' papers, and keeps a turn of its own when the topic alone could
    fill the digest."""
    examples = [borderline["video-sparse"].id, borderline["video-qa"].id]
    for limit in (10, 2):
        ranked = rank_topics([VIDEO], example_paper_ids=examples, limit=limit)
        own = [r.topic is None for r in ranked]
        assert own == sorted(own)  # the topic's papers first, then those like the examples
    full = rank_topics([VIDEO], example_paper_ids=examples, limit=10)
    short = rank_topics([VIDEO], example_paper_ids=examples, limit=2)
    assert any(r.topic is None for r in short) == any(r.topic is None for r in full)


def test_the_liked_papers_words_reach_papers_that_use_them(borderline):
    """Relevance feedback on the words: the liked papers' heaviest words, as a query,
    score a paper that uses them (tracking events across frames to answer questions)
    above one of another subject, and a paper outside the index (an earlier issue's)
    gives its words too."""
    from ranking.index import get_index

    index = get_index(None)
    liked = [borderline["video-qa"].id, borderline["video-sparse"].id]
    similarity = personal.VoteSimilarity(index, liked, index.embeddings is not None)
    words = similarity.liked_words([0, 1], np.array([1.0, 1.0]))
    row = {key: index.row_of[paper.id] for key, paper in borderline.items()}
    assert words[row["frames"]] > words[row["recsys"]] + 0.1
    assert words[row["clips"]] > words[row["translation-document"]] + 0.1
    assert words.min() >= 0.0 and words.max() <= 1.0 + 1e-6
    assert not similarity.liked_words([], np.array([])).any()

    old = make_paper(
        key="old-video",
        title=borderline["video-qa"].title,
        abstract=borderline["video-qa"].abstract,
        days_ago=60,
    )
    recent = get_index(datetime.now(UTC) - timedelta(days=7))
    assert old.id not in recent.row_of
    outside = personal.VoteSimilarity(recent, [old.id], recent.embeddings is not None)
    found = outside.liked_words([0], np.array([1.0]))
    near = {key: recent.row_of[paper.id] for key, paper in borderline.items() if paper.id in recent.row_of}
    assert found[near["frames"]] > found[near["recsys"]]


def test_a_liked_papers_nearest_paper_is_lifted_in_full_to_bring_it_in_not_to_reorder():
    """On made-up numbers: a liked paper that sits apart from the others (its nearest
    paper only 0.3 like it on the absolute scale) lifts that nearest paper as if it
    were fully like it, enough to bring it in from under the cut; the text's strong
    matches are ordered without that lift (``ordering``), and the "why" names the liked
    paper. A paper the reader was sent is never the nearest: the next one is."""

    class Similarity:
        index = type("Index", (), {"size": 4, "row_of": {}})()
        column_of = {10: 0}
        known = {10}
        titles = ["Liked"]
        cosine = np.array([[0.3], [0.25], [0.1], [0.3]], dtype=np.float32)  # centred, per paper
        alike = np.array([[0.34], [0.30], [0.0], [0.32]], dtype=np.float32)  # the paper-to-paper scale
        gram = np.eye(1, dtype=np.float32)
        scaled = staticmethod(lambda c: np.clip(c, 0, 1).astype(np.float32))
        near_centroid = personal.VoteSimilarity.near_centroid
        nearest = personal.VoteSimilarity.nearest

        def liked_words(self, cols, weights):
            return np.zeros(self.index.size, dtype=np.float32)

    block = np.array([[0.16, 0.6, 0.16, 0.16]], dtype=np.float32)  # paper 1: a strong match by the text
    like = [Vote(10, 1, 1)]
    moved = personal.personalise(block, [1], like, Similarity(), floor=0.15)
    trust = personal.LIKE_WEIGHT * 0.5
    assert moved.relevance[0, 0] == pytest.approx(0.16 + trust * 1.0)  # the nearest: fully like it
    assert moved.relevance[0, 2] == pytest.approx(0.16 + trust * 0.1)  # the others: as like it as they are
    assert moved.relevance[0, 3] == pytest.approx(0.16 + trust * 0.3)
    assert moved.ordering[0, 0] == pytest.approx(0.16 + trust * 0.3)  # what orders the text's strong matches
    assert moved.liked_col[0, 0] == 0  # "close to ..., which you liked"

    sent = np.array([True, False, False, False])
    again = personal.personalise(block, [1], like, Similarity(), floor=0.15, unavailable=sent)
    assert again.relevance[0, 3] == pytest.approx(0.16 + trust * 1.0)  # the nearest one left to show
    assert again.relevance[0, 0] == pytest.approx(0.16 + trust * 0.3)

    weak = np.array([[0.05, 0.6, 0.16, 0.16]], dtype=np.float32)  # the nearest hardly matches the topic
    assert personal.personalise(weak, [1], like, Similarity(), floor=0.15).relevance[0, 0] == pytest.approx(0.05)


def test_a_liked_papers_nearest_paper_is_found_among_the_papers_it_may_show(borderline):
    """``VoteSimilarity.nearest`` on the real index: the paper most like a liked one (as
    its page lists similar papers), never a voted or sent paper, at the weight of the
    like relative to the heaviest."""
    from ranking.index import get_index

    index = get_index(None)
    liked = [borderline["video-qa"].id, borderline["speech-lowres"].id]
    similarity = personal.VoteSimilarity(index, liked, index.embeddings is not None)
    unavailable = index.rows_same_as(liked)
    likeness, which = similarity.nearest([0, 1], np.array([1.0, 0.5]), unavailable)
    alike = np.where(unavailable[:, None], -1.0, similarity.alike)
    first, second = int(alike[:, 0].argmax()), int(alike[:, 1].argmax())
    assert first != second
    assert (likeness[first], which[first]) == (1.0, 0) and (likeness[second], which[second]) == (0.5, 1)
    assert np.count_nonzero(likeness) == 2 and not likeness[unavailable].any()

    unavailable[first] = True  # sent before: the next one
    again, _ = similarity.nearest([0], np.array([1.0]), unavailable)
    assert again[first] == 0 and again.max() == 1.0

    assert not similarity.nearest([], np.array([]), unavailable)[0].any()


def test_a_paper_like_an_example_keeps_the_examples_turn_when_the_votes_also_lift_it(borderline):
    """The topic's strong matches by the text would fill the digest alone; a paper very
    like an example paper still gets the examples' turn, also when the example (a 👍)
    lifts it over the topic's cut too, which would otherwise put it after the topic's
    strong matches, out of the digest."""
    examples = [borderline["video-sparse"].id, borderline["video-qa"].id]
    plain = rank_topics([VIDEO], exclude_paper_ids=examples)
    seeded = rank_topics([VIDEO], example_paper_ids=examples, limit=len(plain))
    assert {"clips", "frames"} & set(keys(seeded))
    assert keys(seeded)[-1] in ("clips", "frames")  # after the topic's papers
