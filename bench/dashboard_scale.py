"""How fast the staff dashboard is with 100,000 subscribers and 1,000,000 deliveries.

Needs PostgreSQL (the production database); it creates its own throw-away database
``bench_<name>`` next to the one in DATABASE_URL, fills it with SQL
(generate_series), times the dashboard's aggregates, the progress endpoint and the
whole page, and drops the database again::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_dashboard .venv/bin/python bench/dashboard_scale.py

Options: --subscribers N (default 100000), --deliveries-per-issue N (default 100000),
--issues N (default 10), --repeat N (default 5), --keep (keep the database).
It prints the median time of each (finished issues' counts cached, as in steady use;
"cold cache" is the first call), and the ratio against a small data set (1% of the
size) to show how the cost grows with the data; the query count is the same for both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digestsite.test_settings")

import django  # noqa: E402

SOURCES = ["huggingface daily", "arxiv cs.CL", "arxiv cs.LG", "arxiv cs.CV", "paperswithcode"]


def fill(cursor, *, subscribers: int, issues: int, per_issue: int) -> None:
    """Realistic shapes: 12+ weeks of sign-ups, ~3 topics each, the newest issue half sent."""
    cursor.execute(
        """
        INSERT INTO subscriptions_subscriber (email, status, frequency, weekday, send_hour, timezone, authors,
            created_at, confirmed_at, unsubscribed_at, suppressed_at, suppression_reason, confirmation_sent_at,
            confirmation_error, confirmation_attempts)
        SELECT 'reader' || n || '@example.org',
               (ARRAY['active','active','active','active','active','active','active','pending','paused',
                      'unsubscribed','bounced'])[1 + n %% 11],
               CASE WHEN n %% 5 = 0 THEN 'daily' ELSE 'weekly' END, n %% 7, 8, 'UTC', '[]'::jsonb,
               now() - (n %% 200) * interval '1 day' - (n %% 1440) * interval '1 minute',
               CASE WHEN n %% 11 = 7 THEN NULL ELSE now() - (n %% 200) * interval '1 day' END,
               CASE WHEN n %% 11 = 9 THEN now() - (n %% 50) * interval '1 day' END,
               NULL, '', now() - (n %% 200) * interval '1 day', '', 0
        FROM generate_series(1, %s) AS n
        """,
        [subscribers],
    )
    topics = max(subscribers // 50, 20)
    cursor.execute(
        "INSERT INTO subscriptions_topic (query, created_at) SELECT 'topic ' || n, now() FROM generate_series(1, %s) n",
        [topics],
    )
    # ~3 topics per subscriber, skewed so that a few topics are very popular (ids restart at 1).
    cursor.execute(
        """
        INSERT INTO subscriptions_subscription (subscriber_id, topic_id, created_at)
        SELECT DISTINCT picks.subscriber_id, picks.topic_id, now()
        FROM (SELECT s.id AS subscriber_id, 1 + floor(power(random(), 3) * %s)::int AS topic_id
              FROM subscriptions_subscriber s CROSS JOIN generate_series(1, 3) k) picks
        """,
        [topics],
    )
    cursor.execute(
        """
        INSERT INTO papers_paper (key, arxiv_id, title, abstract, authors, categories, first_seen_at, updated_at,
            upvotes, comment_count, abs_url, pdf_url, page_url, thumbnail_url, source)
        SELECT 'bench-' || n, '', 'Paper ' || n, '', '[]'::jsonb, '[]'::jsonb,
               now() - (n %% 60) * interval '1 day' - (n %% 600) * interval '1 minute', now(), n %% 100, 0,
               '', '', '', '', (%s::text[])[1 + n %% 5]
        FROM generate_series(1, %s) n
        """,
        [SOURCES, max(subscribers // 2, 100)],
    )
    cursor.execute(
        """
        INSERT INTO papers_importrun (source, format, status, started_at, finished_at, created, updated, unchanged,
            error)
        SELECT 'https://feeds.example/' || (n %% 5), 'rss', CASE WHEN n %% 97 = 0 THEN 'failed' ELSE 'ok' END,
               now() - n * interval '1 hour', now() - n * interval '1 hour', n %% 13, n %% 7, 50,
               CASE WHEN n %% 97 = 0 THEN 'HTTP 503' ELSE '' END
        FROM generate_series(1, 5 * 24 * 30) n
        """,
        [],
    )
    cursor.execute(
        """
        INSERT INTO subscriptions_feedback (subscriber_id, paper_id, topic_id, vote, created_at)
        SELECT DISTINCT ON (sub.subscriber_id, p.id) sub.subscriber_id, p.id, sub.topic_id,
               CASE WHEN random() < 0.8 THEN 1 ELSE -1 END, now()
        FROM subscriptions_subscription sub
        JOIN papers_paper p ON p.key = 'bench-' || (1 + (sub.id * 7919) %% 1000)
        WHERE sub.id %% 2 = 0
        """,
        [],
    )
    cursor.execute(
        """
        INSERT INTO digests_issue (frequency, period, created_at, pause_reason)
        SELECT 'weekly', 'bench-W' || n, now() - (%s - n) * interval '1 week', '' FROM generate_series(1, %s) n
        """,
        [issues, issues],
    )
    # per_issue deliveries for each issue; the newest issue is being sent (half still queued).
    cursor.execute(
        """
        INSERT INTO digests_delivery (issue_id, subscriber_id, status, attempts, last_error, message_id, paper_ids,
            items, handed_over, created_at, claimed_at, sent_at, updated_at)
        SELECT i.id, s.id,
               CASE WHEN i.period = 'bench-W' || %s AND s.id %% 2 = 0 THEN 'queued'
                    WHEN s.id %% 97 = 0 THEN 'failed' WHEN s.id %% 53 = 0 THEN 'skipped'
                    WHEN s.id %% 89 = 0 THEN 'suppressed' ELSE 'sent' END,
               1, CASE WHEN s.id %% 97 = 0 THEN '550 5.1.1 No such user' ELSE '' END, '', '[]'::jsonb,
               '[]'::jsonb, false, i.created_at, NULL, NULL, i.created_at + (s.id %% 3600) * interval '1 second'
        FROM digests_issue i
        CROSS JOIN (SELECT id FROM subscriptions_subscriber ORDER BY id LIMIT %s) s
        """,
        [issues, per_issue],
    )
    cursor.execute("VACUUM ANALYZE")  # the steady state autovacuum keeps (visibility map, statistics)


def median_seconds(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(repeat: int) -> dict[str, float]:
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from digests.dashboard import records, selectors
    from digests.models import Issue

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    cache.clear()
    reset_queries()
    start = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        selectors.dashboard()
    results = {
        "queries": len(queries),
        "dashboard(), cold cache": time.perf_counter() - start,
        "selectors.dashboard()": median_seconds(selectors.dashboard, repeat),
        "progress.json selector": median_seconds(selectors.current_issue_progress, repeat),
    }

    def page():
        response = client.get("/admin/dashboard/")
        assert response.status_code == 200, response.status_code

    results["GET /admin/dashboard/"] = median_seconds(page, repeat)

    def uncached():
        selectors.forget_issue_counts()
        selectors.recent_issues()

    results["recent_issues(), not cached"] = median_seconds(uncached, repeat)
    newest = Issue.objects.order_by("-created_at", "-id").values_list("id", flat=True).first()
    results["issue history counts"] = median_seconds(lambda: records.history(newest), repeat)

    def listing():
        response = client.get(f"/admin/dashboard/issues/{newest}/?show=sent&q=reader1")
        assert response.status_code == 200, response.status_code

    results["history page, rows searched"] = median_seconds(listing, repeat)

    def download(url):
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        return sum(len(chunk) for chunk in response.streaming_content)

    results["send record CSV (issue)"] = median_seconds(
        lambda: download(f"/admin/dashboard/issues/{newest}/record.csv"), 1
    )
    results["subscribers CSV (all)"] = median_seconds(lambda: download("/admin/dashboard/subscribers.csv"), 1)
    for name in (
        "subscriber_stats",
        "recent_issues",
        "papers_per_day",
        "last_import_per_source",
        "top_topics",
        "latest_failures",
    ):
        results[f"  {name}()"] = median_seconds(getattr(selectors, name), repeat)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--deliveries-per-issue", type=int, default=100_000)
    parser.add_argument("--issues", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database: the bench measures the production database.")
    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    database = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = f"bench_{database['NAME']}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        rows = {}
        for label, scale in (("small (1%)", 0.01), ("large", 1.0)):
            with connection.cursor() as cursor:
                cursor.execute(
                    "TRUNCATE digests_delivery, digests_issue, subscriptions_feedback, subscriptions_subscription,"
                    " subscriptions_topic, subscriptions_subscriber, papers_importrun, papers_paper"
                    " RESTART IDENTITY CASCADE"
                )
                subscribers = int(args.subscribers * scale)
                per_issue = min(int(args.deliveries_per_issue * scale), subscribers)
                start = time.perf_counter()
                fill(cursor, subscribers=subscribers, issues=args.issues, per_issue=per_issue)
                cursor.execute("SELECT count(*) FROM digests_delivery")
                deliveries = cursor.fetchone()[0]
            print(
                f"{label}: {subscribers:,} subscribers, {deliveries:,} deliveries "
                f"(filled in {time.perf_counter() - start:.1f} s)",
                flush=True,
            )
            rows[label] = measure(args.repeat)
            for name, value in rows[label].items():
                shown = str(value) if name == "queries" else f"{value * 1000:8.1f} ms"
                print(f"  {name:<26} {shown}")
        small, large = rows["small (1%)"], rows["large"]
        print("ratio large / small (data is 100x):")
        for name in small:
            if name != "queries":
                print(f"  {name:<26} {large[name] / small[name]:6.1f}x")
        print(f"  {'queries':<26} {small['queries']} -> {large['queries']}")
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(database["NAME"].removeprefix("bench_"), verbosity=0)


if __name__ == "__main__":
    main()
