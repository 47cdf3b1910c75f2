"""``bench/empty_weeks.py`` measures what a topic gets in a week without its papers: the
papers are taken out for the call only, and what is sent then is counted."""

from bench.empty_weeks import measure
from papers.models import Paper
from ranking import semantic
from tests.ranking.test_strong_matches import STATE_SPACE, _state_space


def test_an_empty_week_is_measured_without_losing_the_papers(db, monkeypatch):
    monkeypatch.setattr(semantic, "_availability", None)
    assert semantic.is_available()
    _state_space()
    judged = {spec["title"]: 2 for spec in STATE_SPACE[:2]}
    wide = {**judged, STATE_SPACE[2]["title"]: 1}  # StarCraft judged relevant: the week keeps beam search only

    result = measure([{"query": "state space models", "relevant": judged}, {"query": "state space", "relevant": wide}])

    assert Paper.objects.count() == len(STATE_SPACE)  # each empty week was rolled back
    assert result["topics"] == 2 and result["grade2_recall"] == 1.0
    assert result["empty_topics_sent"] == 0 and result["empty_papers"] == 0
