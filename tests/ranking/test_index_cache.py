from datetime import timedelta

from django.utils import timezone

from ranking import index
from ranking.api import rank_topics


def test_rankings_within_one_hour_share_one_paper_index(corpus, monkeypatch):
    """Previews and delivery batches pass ``now - lookback``; they must not rebuild the index each time."""
    built = []
    real_build = index.build_index

    def counting_build(since, **kwargs):
        built.append(since)
        return real_build(since, **kwargs)

    monkeypatch.setattr(index, "build_index", counting_build)
    index.clear_cache()
    half_past = timezone.now().replace(minute=30, second=0, microsecond=0)
    first = rank_topics(["video understanding"], since=half_past - timedelta(days=7))
    second = rank_topics(["video understanding"], since=half_past - timedelta(days=7) + timedelta(seconds=7))
    assert [r.paper.id for r in first] == [r.paper.id for r in second]
    assert first  # the corpus has a video understanding paper
    assert built == [(half_past - timedelta(days=7)).replace(minute=0)]
