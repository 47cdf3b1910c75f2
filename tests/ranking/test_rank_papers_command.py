"""The operator tool, run as an operator would."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ranking.api import embed_papers
from tests.ranking_corpus import CORPUS, make_paper


def run(*args):
    out = StringIO()
    call_command("rank_papers", *args, stdout=out)
    return out.getvalue()


def test_json_output(corpus):
    corpus["speech"].arxiv_id = "2401.00001"
    corpus["speech"].save()
    rows = json.loads(run("--topic", "speech recognition", "--topic", "protein structure", "--json", "--limit", "2"))
    assert sorted(r["title"] for r in rows) == sorted([corpus["speech"].title, corpus["protein"].title])
    speech = next(r for r in rows if r["title"] == corpus["speech"].title)
    assert speech["arxiv_id"] == "2401.00001"
    assert set(speech) == {"title", "arxiv_id", "score", "why"}
    assert speech["score"] > 0 and "speech recognition" in speech["why"]


def test_text_output_and_nothing_relevant(corpus):
    text = run("--topic", "video understanding")
    assert text.startswith(" 1. ") and corpus["video-understanding"].title in text
    assert "Matches your topic “video understanding”: its title says “Video Understanding”" in text
    assert "would send nothing" in run("--topic", "lattice quantum chromodynamics")
    assert json.loads(run("--topic", "lattice quantum chromodynamics", "--json")) == []


def test_since_limits_to_recent_papers(db, mode):
    spec = next(s for s in CORPUS if s["key"] == "speech")
    old = make_paper(**{**spec, "key": "old-speech"}, days_ago=400)
    new = make_paper(**{**spec, "key": "new-speech", "title": "Speech Recognition Benchmarks"}, days_ago=1)
    embed_papers([old, new])
    from datetime import timedelta

    from django.utils import timezone

    since = (timezone.now() - timedelta(days=30)).date()
    titles = [r["title"] for r in json.loads(run("--topic", "speech recognition", "--json"))]
    assert set(titles) == {old.title, new.title}
    recent = [r["title"] for r in json.loads(run("--topic", "speech recognition", "--since", str(since), "--json"))]
    assert recent == [new.title]


def test_bad_arguments(db):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        run("--topic", "x", "--since", "last week")
    with pytest.raises(CommandError, match="between 1 and 20"):
        run("--topic", "x", "--limit", "0")
    with pytest.raises(CommandError, match="must not be empty"):
        run("--topic", "  ")
