"""Ranking quality on judged topics: nDCG@10 and recall@10, ours against two references.

    python bench/ranking_quality.py [--data-dir ../shared/data] [--topics FILE] [--lexical-only]
                                    [--fusion weighted|rrf] [--postgres] [--json]

Imports the papers page (``trending-papers-page.txt``) into a scratch SQLite database
with the real importer (the real settings and migrations, in a temporary folder), ranks every query of the
judged topics (``dev_topics.json``: ``[{"query": ..., "relevant": {title: 1 or 2}}]``)
with the code path of ``manage.py rank_papers`` (``ranking.api.rank_topics``, as
for a new subscriber), and measures in the same run:

- substring: what most digest scripts do: a paper matches when its title or abstract
  contains a query word (stopwords left out) as a substring; more words matched
  ranks higher, ties keep the page's order;
- bm25: plain Okapi BM25 (k1=1.2, b=0.75) over title + abstract, lower-cased words,
  no stemming.

It also ranks every topic through the public site's search (``ranking.search_papers``,
what ``/search`` and ``/api/papers?q=`` answer) and compares its nDCG@10 with ours (the
digest ranker): target, within 0.02. On SQLite search ranks the in-memory index; with
``--postgres`` the papers go into a scratch PostgreSQL database (``bench/_harness.py``)
and search takes its full-text candidates there, then reranks them.

Three judged sets, each graded 2 (squarely on the topic) or 1 (clearly related) over
the same 77 papers: the four dev topics (``dev_topics.json``, given with the data),
ten extra topics judged by hand while the ranking was being built
(``bench/ranking_extra_topics.json``), and 24 blind topics
(``bench/ranking_blind_topics.json``), judged by readers who saw only the papers and
the dev judgements, never a ranking; the blind set is the check that a change helps
the method, not the topics it was tuned on. Pass ``--topics FILE`` for the others.

nDCG@10 uses graded gains (2 and 1, log2 discount) over the judged list, unjudged
papers gain 0; recall@10 counts the relevance-2 papers found in the top 10. Our
ranking shows only strong matches (``ranking.selection``), so it may show fewer than
10: precision is the judged relevant share of what it shows (the digest's promise:
no filler), next to the targets precision >= 0.85, grade-2 recall >= 0.95 and nDCG@10
>= 0.95.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
K = 10
STOPWORDS = {"a", "an", "and", "for", "in", "of", "on", "the", "to", "with", "by", "from", "via", "at", "or"}


def setup_django(scratch: Path, *, lexical_only: bool, database_url: str | None = None) -> None:
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{scratch / 'bench.sqlite3'}"
    os.environ["VAR_DIR"] = str(scratch)
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("LOG_FORMAT", "plain")
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "digestsite.settings"
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if lexical_only:
        from ranking import semantic

        semantic._availability = False


def import_papers(path: Path) -> int:
    """Import the page the way production does (``papers.services.import_source``, which
    also stores each paper's embedding: the ranking receives ``papers_stored``)."""
    from papers import services

    result = services.import_source(str(path), fmt="text")
    return result.created + result.updated + result.unchanged


# -- reference rankers --------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def substring_ranker(papers, query: str) -> list[str]:
    keywords = [w for w in _words(query) if w not in STOPWORDS]
    scored = []
    for position, (title, abstract) in enumerate(papers):
        text = f"{title} {abstract}".lower()
        hits = sum(1 for k in keywords if k in text)
        if hits:
            scored.append((-hits, position, title))
    return [title for _h, _p, title in sorted(scored)[:K]]


def bm25_ranker(papers, query: str, *, k1: float = 1.2, b: float = 0.75) -> list[str]:
    docs = [_words(f"{t} {a}") for t, a in papers]
    n = len(docs)
    average = sum(len(d) for d in docs) / max(n, 1)
    frequency: dict[str, int] = {}
    for doc in docs:
        for term in set(doc):
            frequency[term] = frequency.get(term, 0) + 1
    scored = []
    for position, doc in enumerate(docs):
        score = 0.0
        for term in set(_words(query)):
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (n - frequency[term] + 0.5) / (frequency[term] + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / average))
        if score > 0:
            scored.append((-score, position, papers[position][0]))
    return [title for _s, _p, title in sorted(scored)[:K]]


# -- metrics ------------------------------------------------------------------------


def ndcg_at_k(ranked: list[str], judged: dict[str, int]) -> float:
    dcg = sum(judged.get(title, 0) / math.log2(i + 2) for i, title in enumerate(ranked[:K]))
    ideal = sorted(judged.values(), reverse=True)[:K]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[str], judged: dict[str, int]) -> float:
    wanted = {t for t, g in judged.items() if g == 2}
    return len(wanted & set(ranked[:K])) / len(wanted) if wanted else 1.0


def precision(ranked: list[str], judged: dict[str, int]) -> float:
    """Judged relevant (grade 1 or 2) among the papers shown; 1.0 when nothing is shown
    (what that costs is counted by the recall)."""
    return sum(1 for title in ranked[:K] if judged.get(title, 0) > 0) / len(ranked[:K]) if ranked else 1.0


def ours(query: str) -> list[str]:
    from ranking.api import rank_topics

    return [r.paper.title for r in rank_topics([query], limit=K)]


def through_search(query: str) -> list[str]:
    from ranking.api import search_papers

    return [r.paper.title for r in search_papers(query, limit=K).papers]


def _cells(result) -> str:
    ours, substring, bm25, search = result["ours"], result["substring"], result["bm25"], result["search"]
    return (
        f"{ours['ndcg']:9.3f} {ours['recall']:5.2f}  {substring['ndcg']:11.3f} {substring['recall']:5.2f}  "
        f"{bm25['ndcg']:9.3f} {bm25['recall']:5.2f}  {search['ndcg']:11.3f}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--topics", type=Path, help="judged topics (default: DATA_DIR/dev_topics.json)")
    parser.add_argument("--lexical-only", action="store_true", help="rank as without the semantic extra")
    parser.add_argument("--fusion", choices=["weighted", "rrf"], help="fusion method to measure")
    parser.add_argument("--postgres", action="store_true", help="search on a scratch PostgreSQL database")
    parser.add_argument("--show", action="store_true", help="print our top 10 per topic")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    page = args.data_dir / "trending-papers-page.txt"
    topics_path = args.topics or args.data_dir / "dev_topics.json"
    topics = json.loads(topics_path.read_text(encoding="utf-8"))

    with tempfile.TemporaryDirectory(prefix="ranking-quality-") as scratch, _database(args.postgres) as url:
        setup_django(Path(scratch), lexical_only=args.lexical_only, database_url=url)
        if args.fusion:
            import dataclasses

            from ranking import fusion

            fusion.DEFAULT = dataclasses.replace(fusion.DEFAULT, method=args.fusion)
        started = time.monotonic()
        count = import_papers(page)
        import_seconds = time.monotonic() - started
        from papers.models import Paper

        papers = list(Paper.objects.order_by("id").values_list("title", "abstract"))
        rankers = {
            "ours": ours,
            "substring": lambda q: substring_ranker(papers, q),
            "bm25": lambda q: bm25_ranker(papers, q),
            "search": through_search,
        }
        rows = []
        started = time.monotonic()
        for topic in topics:
            row = {"query": topic["query"]}
            for name, ranker in rankers.items():
                ranked = ranker(topic["query"])
                row[name] = {
                    "ndcg": ndcg_at_k(ranked, topic["relevant"]),
                    "recall": recall_at_k(ranked, topic["relevant"]),
                    "precision": precision(ranked, topic["relevant"]),
                    "shown": len(ranked[:K]),
                }
                if name == "ours":
                    row["ranked"] = ranked
            rows.append(row)
        rank_seconds = time.monotonic() - started

    from ranking import semantic

    mode = "lexical only" if args.lexical_only or not semantic.is_available() else "lexical + semantic"
    means = {
        name: {m: sum(r[name][m] for r in rows) / len(rows) for m in ("ndcg", "recall", "precision")}
        for name in rankers
    }
    shown = sum(r["ours"]["shown"] for r in rows)
    relevant_shown = sum(round(r["ours"]["precision"] * r["ours"]["shown"]) for r in rows)
    ahead = all(
        r["ours"]["ndcg"] > max(r["substring"]["ndcg"], r["bm25"]["ndcg"]) - 1e-9
        or min(r["substring"]["ndcg"], r["bm25"]["ndcg"]) >= 1.0 - 1e-9
        for r in rows
    )
    strictly_ahead = all(
        r["ours"]["ndcg"] > r[ref]["ndcg"] for r in rows for ref in ("substring", "bm25") if r[ref]["ndcg"] < 1.0
    )
    if args.json:
        print(json.dumps({"mode": mode, "papers": count, "topics": rows, "mean": means}, indent=1))
        return 0
    print(
        f"{count} papers imported in {import_seconds:.1f}s; {len(rows)} topics ranked in {rank_seconds:.2f}s ({mode})"
    )
    header = (
        f"{'topic':44} {'ours nDCG':>9} {'R@10':>5}  {'substr nDCG':>11} {'R@10':>5}  {'bm25 nDCG':>9} {'R@10':>5}  "
        f"{'search nDCG':>11}"
    )
    print(header)
    for r in rows:
        print(f"{r['query'][:44]:44} {_cells(r)}")
        if args.show:
            for position, title in enumerate(r["ranked"], 1):
                topic = next(t for t in topics if t["query"] == r["query"])
                print(f"    {position:2}. [{topic['relevant'].get(title, 0)}] {title[:90]}")
    m = means
    print(f"{'MEAN':44} {_cells(m)}")
    print(
        f"strong matches (what a new subscriber gets): {shown} papers shown, precision {m['ours']['precision']:.3f} "
        f"(pooled {relevant_shown / max(shown, 1):.3f}), recall of grade 2 {m['ours']['recall']:.3f}, "
        f"nDCG@10 {m['ours']['ndcg']:.3f}; targets precision >= 0.85: "
        f"{'met' if m['ours']['precision'] >= 0.85 else 'NOT met'}, grade-2 recall >= 0.95: "
        f"{'met' if m['ours']['recall'] >= 0.95 else 'NOT met'}, nDCG@10 >= 0.95: "
        f"{'met' if m['ours']['ndcg'] >= 0.95 else 'NOT met'}"
    )
    target = m["ours"]["ndcg"] >= 0.92
    print(
        f"target nDCG@10 >= 0.92: {'met' if target else 'NOT met'}; ahead of both references on every imperfect topic: "
        f"{'yes' if strictly_ahead else ('tied somewhere' if ahead else 'NO')}"
    )
    gap = m["ours"]["ndcg"] - m["search"]["ndcg"]
    path = "full-text candidates on PostgreSQL, reranked" if args.postgres else "the in-memory index (SQLite)"
    print(
        f"search path ({path}): nDCG@10 {m['search']['ndcg']:.3f}, {gap:+.3f} behind ours; "
        f"target within 0.02: {'met' if abs(gap) <= 0.02 else 'NOT met'}"
    )
    return 0


@contextlib.contextmanager
def _database(postgres: bool):
    """None (SQLite in the scratch folder), or a scratch PostgreSQL database's URL."""
    if not postgres:
        yield None
        return
    from bench._harness import ScratchDatabase

    with ScratchDatabase("quality") as database:
        yield database.url


if __name__ == "__main__":
    sys.exit(main())
