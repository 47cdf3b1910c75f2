"""Operator tool: what the digest would pick for a new subscriber with these topics."""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from ranking.api import rank_topics


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Rank the stored papers for one or more topics, as the digest would for a new subscriber."

    def add_arguments(self, parser):
        parser.add_argument("--topic", action="append", required=True, help="topic query; repeat for more")
        parser.add_argument("--limit", type=int, default=10, help="how many papers (1-20, default 10)")
        parser.add_argument("--since", type=_date, help="only papers first seen on or after YYYY-MM-DD (default: all)")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print a JSON list of {title, arxiv_id, score, why}"
        )

    def handle(self, *args, topic, limit, since, as_json, **options):
        if not 1 <= limit <= 20:
            raise CommandError("--limit must be between 1 and 20")
        topics = [t.strip() for t in topic if t.strip()]
        if not topics:
            raise CommandError("--topic must not be empty")
        ranked = rank_topics(topics, since=since, limit=limit)
        if as_json:
            self.stdout.write(_dumps(ranked))
            return
        if not ranked:
            self.stdout.write("No paper is relevant enough to these topics: the digest would send nothing.")
            return
        for position, item in enumerate(ranked, 1):
            arxiv = f" [{item.paper.arxiv_id}]" if item.paper.arxiv_id else ""
            self.stdout.write(f"{position:2}. {item.score:.3f}  {item.paper.title}{arxiv}")
            self.stdout.write(f"      {item.why}")


def _dumps(ranked) -> str:
    rows = [
        {"title": r.paper.title, "arxiv_id": r.paper.arxiv_id, "score": round(r.score, 4), "why": r.why} for r in ranked
    ]
    return json.dumps(rows, ensure_ascii=False, indent=2)
