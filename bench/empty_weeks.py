"""What a subscriber gets in a period with nothing for their topic.

Every judged topic (the dev topics, ``bench/ranking_extra_topics.json`` and
``bench/ranking_blind_topics.json``) is ranked twice the way a new subscriber's digest is
(``ranking.api.rank_topics``, strong matches only): over the whole trending page, and
over the page without that topic's relevant papers (grade 1 or 2, deleted in a
transaction rolled back afterwards). The second is a week in which nothing should be
sent: every paper it sends is one the reader did not need. For each ``--floors`` value
of ``ranking.selection.MATCH_FLOOR`` (``LEXICAL_ONLY_FLOOR`` with ``--lexical-only``)
it prints, per set, what the whole page gives (papers shown, pooled precision, grade-2
recall, nDCG@10 as ``bench/ranking_quality.py`` counts them) and what the empty weeks
give (topics sent anything, papers sent).

    python -m bench.empty_weeks [--data-dir ../shared/data] [--floors 0 0.3 0.35 0.4] [--lexical-only]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.ranking_quality import REPO, K, import_papers, ndcg_at_k, setup_django

SETS = {
    "dev": None,  # DATA_DIR/dev_topics.json
    "extra": REPO / "bench" / "ranking_extra_topics.json",
    "blind": REPO / "bench" / "ranking_blind_topics.json",
}


def shown_titles(query: str, *, without: list[str]) -> list[str]:
    """The titles a new subscriber to ``query`` gets, with the papers titled ``without``
    out of the catalogue for the call."""
    from django.db import transaction

    from papers.models import Paper
    from ranking.api import rank_topics

    with transaction.atomic():
        if without:
            Paper.objects.filter(title__in=without).delete()
        titles = [ranked.paper.title for ranked in rank_topics([query], limit=K)]
        transaction.set_rollback(True)
    return titles


def measure(topics: list[dict]) -> dict:
    shown = relevant = grade2 = grade2_shown = empty_sent = empty_papers = 0
    ndcg = 0.0
    for topic in topics:
        judged = topic["relevant"]
        full = shown_titles(topic["query"], without=[])
        empty = shown_titles(topic["query"], without=[title for title, grade in judged.items() if grade > 0])
        shown += len(full)
        relevant += sum(1 for title in full if judged.get(title, 0) > 0)
        grade2 += sum(1 for grade in judged.values() if grade == 2)
        grade2_shown += sum(1 for title in full if judged.get(title, 0) == 2)
        ndcg += ndcg_at_k(full, judged)
        empty_sent += bool(empty)
        empty_papers += len(empty)
    return {
        "topics": len(topics),
        "shown": shown,
        "precision": relevant / shown if shown else 1.0,
        "grade2_recall": grade2_shown / grade2 if grade2 else 1.0,
        "ndcg": ndcg / len(topics),
        "empty_topics_sent": empty_sent,
        "empty_papers": empty_papers,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--floors", type=float, nargs="+", help="floors to measure (default: the kept one)")
    parser.add_argument("--lexical-only", action="store_true", help="rank as without the sentence model")
    args = parser.parse_args(argv)
    sets = {name: json.loads((path or args.data_dir / "dev_topics.json").read_text()) for name, path in SETS.items()}

    with tempfile.TemporaryDirectory(prefix="empty-weeks-") as scratch:
        setup_django(Path(scratch), lexical_only=args.lexical_only)
        import_papers(args.data_dir / "trending-papers-page.txt")
        from ranking import selection

        knob = "LEXICAL_ONLY_FLOOR" if args.lexical_only else "MATCH_FLOOR"
        floors = args.floors or [getattr(selection, knob)]
        print("floor  set    whole page: shown precision grade-2-recall nDCG@10 | empty weeks: topics sent, papers")
        for floor in floors:
            setattr(selection, knob, floor)
            for name, topics in sets.items():
                m = measure(topics)
                print(
                    f"{floor:5.3f}  {name:5s}  {m['shown']:4d}  {m['precision']:.3f}  {m['grade2_recall']:.3f}"
                    f"  {m['ndcg']:.3f} | {m['empty_topics_sent']:2d} of {m['topics']:2d}  {m['empty_papers']:4d}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
