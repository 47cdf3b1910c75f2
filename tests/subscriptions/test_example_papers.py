"""Example papers as a way of following: typed as arXiv ids, links or catalogue titles,
pre-filled from a paper page, stored, shown back, and ranked as "more like these"."""

import re

import pytest
from django.core import mail

from papers.models import Paper
from subscriptions import examples, services
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    return {
        "ssm": Paper.objects.create(
            key="2111.00396",
            arxiv_id="2111.00396",
            title="Efficiently Modeling Long Sequences with Structured State Spaces",
        ),
        "mamba": Paper.objects.create(key="2312.00752", arxiv_id="2312.00752", title="Mamba: Selective State Spaces"),
        "site": Paper.objects.create(key="site-only", title="A Paper Known Only Here"),
    }


@pytest.mark.parametrize(
    ("typed", "which"),
    [
        ("2312.00752", "mamba"),
        ("2312.00752v2", "mamba"),
        ("https://arxiv.org/abs/2312.00752", "mamba"),
        ("https://arxiv.org/pdf/2312.00752v1", "mamba"),
        ("https://huggingface.co/papers/2312.00752", "mamba"),
        ("mamba: selective STATE spaces", "mamba"),
    ],
)
def test_ids_links_and_titles_name_a_paper(catalogue, typed, which):
    assert examples.resolve([typed]) == [catalogue[which].id]


def test_our_own_paper_page_link_names_its_paper(catalogue):
    site = catalogue["site"]
    assert examples.resolve([f"http://testserver/papers/{site.id}/", f"/papers/{site.id}/"]) == [site.id]


def test_unknown_lines_are_named_and_nothing_is_taken(catalogue):
    with pytest.raises(examples.UnknownExamples, match="“9999.99999”; “No such title”"):
        examples.resolve(["2312.00752", "9999.99999", "No such title"])


def test_a_paper_page_prefills_the_signup_form(client, catalogue):
    html = client.get("/subscribe/?paper=2312.00752").content.decode()
    assert ">2312.00752</textarea>" in html.replace("\n", "")


def test_a_prefilled_paper_is_shown_as_the_catalogue_names_it_and_an_unknown_line_as_typed(client, catalogue):
    site = catalogue["site"]
    html = client.get("/subscribe/", {"paper": [f"/papers/{site.id}/", "https://arxiv.org/abs/2312.00752", "Nope"]})
    textarea = re.search(r'<textarea name="example_papers"[^>]*>(.*?)</textarea>', html.content.decode(), re.DOTALL)
    assert textarea.group(1).strip() == "A Paper Known Only Here\n2312.00752\nNope"


def test_signing_up_with_example_papers_only(client, catalogue, django_capture_on_commit_callbacks):
    form = {
        "email": "ex@example.org",
        "topics": "",
        "example_papers": "https://arxiv.org/abs/2312.00752\n"
        "Efficiently Modeling Long Sequences with Structured State Spaces",
        "frequency": "weekly",
        "weekday": "0",
        "send_hour": "8",
        "timezone": "UTC",
        "action": "subscribe",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/subscribe/", form)
    assert response.status_code == 200 and "Check your inbox" in response.content.decode()
    subscriber = Subscriber.objects.get(email="ex@example.org")
    assert subscriber.example_paper_ids == [catalogue["mamba"].id, catalogue["ssm"].id]
    assert len(mail.outbox) == 1


def test_a_bad_example_is_shown_back_with_its_line(client, catalogue):
    form = {"email": "ex@example.org", "topics": "rl", "example_papers": "nothing like this", "timezone": "UTC"}
    response = client.post("/subscribe/", {**form, "frequency": "weekly", "action": "subscribe"})
    assert response.status_code == 400
    assert "Not in our catalogue: “nothing like this”" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_preferences_show_the_examples_back(client, catalogue):
    services.subscribe(email="ex@example.org", topics=["rl"], example_paper_ids=[catalogue["mamba"].id], timezone="UTC")
    from subscriptions.links import preferences_url

    subscriber = Subscriber.objects.get()
    html = client.get(preferences_url(subscriber).removeprefix("http://testserver")).content.decode()
    assert ">2312.00752</textarea>" in html.replace("\n", "")


@pytest.fixture
def state_space(db, monkeypatch):
    """The state space papers with their embeddings, and S4D, very like S4 (the sentence model on)."""
    from ranking import semantic
    from ranking.api import embed_papers
    from tests.ranking.test_strong_matches import STATE_SPACE
    from tests.ranking_corpus import make_paper

    monkeypatch.setattr(semantic, "_availability", None)
    papers = {spec["key"]: make_paper(**spec) for spec in STATE_SPACE}
    papers["s4d"] = make_paper(
        key="s4d",
        title="Diagonal State Space Models Are as Effective as Structured State Space Models",
        abstract="Structured state space models (SSMs) model long sequences; we show that a diagonal state "
        "matrix makes the state space model as effective on long-range tasks, in near-linear time.",
    )
    embed_papers(list(papers.values()))
    return papers


def test_the_digest_brings_papers_like_the_examples(state_space):
    from digests.matching import rank_papers_for

    services.subscribe(
        email="ex@example.org", topics=["diverse beam search"], example_paper_ids=[state_space["s4"].id], timezone="UTC"
    )
    ranked = {r.paper.key: r for r in rank_papers_for(Subscriber.objects.get())}
    assert "s4" not in ranked  # an example is never sent back
    assert "starcraft" not in ranked
    assert ranked["s4d"].why.startswith("Close to “Efficiently Modeling Long Sequences")
    assert ranked["s4d"].why.endswith("one of your example papers")


def test_a_topic_s_match_like_an_example_paper_names_it_as_an_example_not_a_like(state_space):
    from ranking.api import Request, TopicRef, rank_requests

    s4 = state_space["s4"].id
    topic = [TopicRef("state space models")]
    given = Request("given", topic, example_paper_ids=[s4])
    liked = Request("liked", topic, liked_ids=[s4])
    ranked = {key: {r.paper.key: r.why for r in found} for key, found in rank_requests([given, liked]).items()}
    assert ranked["given"]["s4d"].startswith("Matches your topic “state space models”")
    example = "close to “Efficiently Modeling Long Sequences with Structured State Space Models”"
    assert ranked["given"]["s4d"].endswith(f"{example}, one of your example papers")
    assert ranked["liked"]["s4d"].endswith(f"{example}, which you liked")


def test_the_live_preview_takes_example_papers_and_skips_lines_it_cannot_find(client, monkeypatch):
    from django.core.cache import cache

    from ranking import semantic
    from ranking.api import embed_papers
    from tests.ranking_corpus import make_paper

    cache.clear()
    monkeypatch.setattr(semantic, "_availability", None)
    s4 = make_paper(
        key="2111.00396",
        arxiv_id="2111.00396",
        title="Efficiently Modeling Long Sequences with Structured State Space Models",
        abstract="State space models (SSMs) are a promising alternative to attention for long sequences. We "
        "structure the state matrix so that the state space model runs in near-linear time on long-range tasks.",
    )
    s4d = make_paper(
        key="s4d",
        title="Diagonal State Space Models Are as Effective as Structured State Space Models",
        abstract="Structured state space models (SSMs) model long sequences; we show that a diagonal state "
        "matrix makes the state space model as effective on long-range tasks, in near-linear time.",
    )
    embed_papers([s4, s4d])
    response = client.get("/preview.json", {"topics": "", "example_papers": "2111.00396\nnot a paper yet"})
    assert response.status_code == 200
    (paper,) = response.json()["papers"]
    assert paper["title"] == s4d.title and paper["why"].endswith("one of your example papers")
    cache.clear()
