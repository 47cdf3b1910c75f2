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

``--feedback`` measures what votes and example papers do instead, on every judged set
(dev, extra, blind; or ``--topics``), for one subscriber per topic ranked by the
digest's own code (``digests.matching.rank_for_subscribers``):

- the simulated reader: from their first top 10, 👍 to every relevance-2 paper and 👎
  to every unjudged one, up to 3 each, cast through the digest's vote links (a POST
  to the vote page, as the reader's browser sends it); then nDCG@10 and precision@5
  (share of the top 5 judged 1 or 2) over the papers they did not vote on: the
  ranking without votes (those papers left out) against the one with them;
- example papers: a subscriber seeded with the topic's first two relevance-2 papers
  (in the judgement file's order) as examples, against the text alone, both scored
  over the other papers.

Both print, per set, precision and the papers shown before and after (votes may bring
papers in from under the text's cut) and the issue's targets: no set worse on average,
no topic worse by more than 0.05, a mean gain of 0.05 where there is room.
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
    parser.add_argument("--feedback", action="store_true", help="measure votes and example papers instead")
    args = parser.parse_args(argv)
    if args.feedback:
        return feedback_main(args)
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
    # The search lists ten whatever their strength where a digest keeps only strong matches,
    # so it may score above the digest; the target is that it is never more than 0.02 behind.
    gap = m["search"]["ndcg"] - m["ours"]["ndcg"]
    path = "full-text candidates on PostgreSQL, reranked" if args.postgres else "the in-memory index (SQLite)"
    print(
        f"search path ({path}): nDCG@10 {m['search']['ndcg']:.3f}, {abs(gap):.3f} "
        f"{'ahead of' if gap >= 0 else 'behind'} ours (the search fills its ten, the digest shows strong matches "
        f"only); target at most 0.02 behind: {'met' if gap >= -0.02 else 'NOT met'}"
    )
    return 0


# -- votes and example papers --------------------------------------------------------

VOTES_EACH = 3
TOPIC_SETS = {
    "dev": None,  # DATA_DIR/dev_topics.json
    "extra": REPO / "bench" / "ranking_extra_topics.json",
    "blind": REPO / "bench" / "ranking_blind_topics.json",
}


def precision_at_5(ranked: list[str], judged: dict[str, int]) -> float:
    return sum(1 for title in ranked[:5] if judged.get(title, 0) > 0) / 5


def simulated_reader(name, topics, client) -> list[dict]:
    """Each topic's subscriber votes on their first top 10 through the vote links; their
    unvoted papers scored before (no votes) and after (with them)."""
    from digests.matching import rank_for_subscribers
    from ranking.api import rank_topics
    from subscriptions.links import FeedbackLinks
    from subscriptions.models import Subscriber, Subscription, Topic

    readers = []
    for number, topic in enumerate(topics):
        subscriber = Subscriber.objects.create(email=f"{name}-{number}@example.com", status="active")
        followed, _ = Topic.objects.get_or_create(query=topic["query"])
        Subscription.objects.create(subscriber=subscriber, topic=followed)
        readers.append((subscriber, followed, topic))
    first = rank_for_subscribers([s for s, _, _ in readers], limit=K)
    for subscriber, followed, topic in readers:
        grades = [(r.paper, topic["relevant"].get(r.paper.title, 0)) for r in first[subscriber.id]]
        liked = [paper for paper, grade in grades if grade == 2][:VOTES_EACH]
        disliked = [paper for paper, grade in grades if grade == 0][:VOTES_EACH]
        links = FeedbackLinks(subscriber.id)
        for papers, vote in ((liked, 0), (disliked, 1)):
            for paper in papers:
                url = links.of(paper.id, followed.id)[vote]
                response = client.post(_path(url), {"vote": "1" if vote == 0 else "-1"})
                assert response.status_code == 200, response.status_code
        topic["_voted"] = {p.id for p in liked + disliked}
        topic["_voted_titles"] = {p.title for p in liked + disliked}
    after = rank_for_subscribers([s for s, _, _ in readers], limit=K)
    rows = []
    for subscriber, _followed, topic in readers:
        judged = {t: g for t, g in topic["relevant"].items() if t not in topic["_voted_titles"]}
        before = [r.paper.title for r in rank_topics([topic["query"]], limit=K, exclude_paper_ids=topic["_voted"])]
        now = [r.paper.title for r in after[subscriber.id]]
        rows.append(_before_after(topic["query"], before, now, judged))
    return rows


def seeded_with_examples(topics) -> list[dict]:
    from papers.models import Paper
    from ranking.api import rank_topics

    ids = dict(Paper.objects.values_list("title", "id"))
    rows = []
    for topic in topics:
        examples = [title for title, grade in topic["relevant"].items() if grade == 2 and title in ids][:2]
        if len(examples) < 2:
            continue
        example_ids = [ids[title] for title in examples]
        judged = {t: g for t, g in topic["relevant"].items() if t not in examples}
        alone = [r.paper.title for r in rank_topics([topic["query"]], limit=K, exclude_paper_ids=example_ids)]
        seeded = [r.paper.title for r in rank_topics([topic["query"]], limit=K, example_paper_ids=example_ids)]
        rows.append(_before_after(topic["query"], alone, seeded, judged))
    return rows


def _before_after(query, before, after, judged) -> dict:
    return {
        "query": query,
        **{
            side: {
                "ndcg": ndcg_at_k(ranked, judged),
                "p5": precision_at_5(ranked, judged),
                "precision": precision(ranked, judged),
                "shown": len(ranked[:K]),
            }
            for side, ranked in (("before", before), ("after", after))
        },
        "lists": [[(judged.get(t, 0), t[:60]) for t in side] for side in (before, after)],
    }


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path


def _summary(name: str, rows: list[dict]) -> dict:
    mean = {
        side: {m: sum(r[side][m] for r in rows) / len(rows) for m in ("ndcg", "p5", "precision")}
        for side in ("before", "after")
    }
    for side in ("before", "after"):
        mean[side]["shown"] = sum(r[side]["shown"] for r in rows)
    deltas = [r["after"]["ndcg"] - r["before"]["ndcg"] for r in rows]
    return {
        "set": name,
        "topics": len(rows),
        "mean": mean,
        "worse": sum(1 for d in deltas if d < -1e-9),
        "better": sum(1 for d in deltas if d > 1e-9),
        "worst": min(deltas),
        "rows": rows,
    }


def _print_summary(summary: dict, show: bool) -> None:
    m = summary["mean"]
    print(
        f"{summary['set']:6} {summary['topics']:3} topics  "
        f"nDCG@10 {m['before']['ndcg']:.3f} -> {m['after']['ndcg']:.3f}  "
        f"P@5 {m['before']['p5']:.2f} -> {m['after']['p5']:.2f}  precision {m['before']['precision']:.2f} -> "
        f"{m['after']['precision']:.2f} ({m['before']['shown']} -> {m['after']['shown']} shown)  "
        f"better {summary['better']}, worse "
        f"{summary['worse']}, worst {summary['worst']:+.3f}"
    )
    if show:
        for r in summary["rows"]:
            print(
                f"    {r['query'][:50]:50} {r['before']['ndcg']:.3f} -> {r['after']['ndcg']:.3f}  "
                f"P@5 {r['before']['p5']:.2f} -> {r['after']['p5']:.2f}"
            )
            if r["after"]["ndcg"] < r["before"]["ndcg"] - 0.02:  # what moved, [grade] before | after
                for (gb, tb), (ga, ta) in zip(*r["lists"], strict=False):
                    print(f"        [{gb}] {tb:60} | [{ga}] {ta}")


def feedback_main(args) -> int:
    sets = {"custom": args.topics} if args.topics else {**TOPIC_SETS, "dev": args.data_dir / "dev_topics.json"}
    with tempfile.TemporaryDirectory(prefix="ranking-feedback-") as scratch, _database(args.postgres) as url:
        setup_django(Path(scratch), lexical_only=args.lexical_only, database_url=url)
        from django.conf import settings
        from django.test import Client

        count = import_papers(args.data_dir / "trending-papers-page.txt")
        client = Client(HTTP_HOST=settings.SITE_URL.split("://", 1)[1].split("/")[0])
        results = {"votes": [], "examples": []}
        for name, path in sets.items():
            topics = json.loads(path.read_text(encoding="utf-8"))
            results["votes"].append(_summary(name, simulated_reader(name, [dict(t) for t in topics], client)))
            seeded = seeded_with_examples(topics)
            if seeded:
                results["examples"].append(_summary(name, seeded))
    from ranking import semantic

    mode = "lexical only" if args.lexical_only or not semantic.is_available() else "lexical + semantic"
    if args.json:
        print(json.dumps({"mode": mode, "papers": count, **results}, indent=1))
        return 0
    print(f"{count} papers ({mode})")
    print("simulated reader (votes through the vote page), scored over unvoted papers, before -> after:")
    for summary in results["votes"]:
        _print_summary(summary, args.show)
    print("two relevance-2 example papers, scored over the other papers, text alone -> with examples:")
    for summary in results["examples"]:
        _print_summary(summary, args.show)
    for kind, summaries in results.items():
        if not summaries:
            continue
        worst = min(s["worst"] for s in summaries)
        no_set_worse = all(s["mean"]["after"]["ndcg"] >= s["mean"]["before"]["ndcg"] - 1e-9 for s in summaries)
        gains = ", ".join(
            f"{s['set']} {s['mean']['after']['ndcg'] - s['mean']['before']['ndcg']:+.3f}" for s in summaries
        )
        print(
            f"targets ({kind}): no set worse on average: {'met' if no_set_worse else 'NOT met'}; no topic worse by "
            f"more than 0.05: {'met' if worst >= -0.05 else 'NOT met'} (worst {worst:+.3f}); mean gain >= 0.05 where "
            f"there is room: {gains}"
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
