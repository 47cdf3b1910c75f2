"""Subscribers from CSV files (subscriptions.imports), read from real files in tests/subscriptions/csv."""

from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone

from subscriptions import exports, imports, suppression
from subscriptions.models import Subscriber, Subscription, Topic

pytestmark = pytest.mark.django_db
FILES = Path(__file__).parent / "csv"


@pytest.fixture
def known():
    """Addresses the good file names again: each must be left exactly as it is."""
    Subscriber.objects.create(email="suppressed@example.org", status="active", confirmed_at=timezone.now())
    suppression.suppress_address("suppressed@example.org", reason="hard bounce")
    Subscriber.objects.create(email="left@example.org", status="unsubscribed", unsubscribed_at=timezone.now())
    Subscriber.objects.create(email="active@example.org", status="active", frequency="weekly")


def test_a_file_with_bad_rows_is_refused_with_every_problem_by_line_and_nothing_written():
    with pytest.raises(imports.ImportRefused) as refused:
        imports.import_subscribers((FILES / "with_bad_rows.csv").read_bytes(), consent_confirmed=True)

    assert [line for line, _ in refused.value.problems] == [3, 4, 5, 6, 7, 8, 9]
    text = "\n".join(refused.value.messages())
    assert "Line 3: 'not-an-address' is not an email address." in text
    assert "Line 4: nobody@example.org: follow at least one topic or author." in text
    assert "Line 5: tz@example.org: unknown time zone 'Mars/Olympus'." in text
    assert "Line 6: freq@example.org: unknown frequency 'hourly'." in text
    assert "Line 7: ok@example.org is also on line 2." in text
    assert "Line 8: consent must be yes or no, not 'maybe'." in text
    assert "Line 9: 6 cells, but the header names 5 columns." in text
    assert not Subscriber.objects.exists() and not Topic.objects.exists()
    assert mail.outbox == []


def test_the_good_file_imports_consented_rows_confirmed_and_invites_the_others(
    known, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        plan = imports.import_subscribers((FILES / "subscribers.csv").read_bytes(), consent_confirmed=True)

    assert [row.email for row in plan.confirmed] == ["ada@example.org"]
    assert [row.email for row in plan.invited] == ["bob@example.org", "cyd@example.org"]
    assert plan.summary() == (
        "1 imported as confirmed; 2 sent a confirmation email; "
        "3 left as they are (1 already subscribed, 1 suppressed, 1 unsubscribed)"
    )
    ada = Subscriber.objects.get(email="ada@example.org")
    assert (ada.status, ada.frequency, ada.timezone) == ("active", "weekly", "Europe/London")
    assert ada.confirmed_at is not None
    assert sorted(ada.topics.values_list("query", flat=True)) == ['"speech recognition"', "large language models"]
    bob = Subscriber.objects.get(email="bob@example.org")
    assert (bob.status, bob.frequency, bob.timezone, bob.confirmed_at) == ("pending", "daily", "America/New_York", None)
    cyd = Subscriber.objects.get(email="cyd@example.org")
    assert (cyd.frequency, cyd.timezone) == ("weekly", "UTC")  # empty cells: the defaults
    assert sorted(message.to[0] for message in mail.outbox) == ["bob@example.org", "cyd@example.org"]
    # Known addresses: untouched.
    assert Subscriber.objects.get(email="suppressed@example.org").status == "bounced"
    assert Subscriber.objects.get(email="left@example.org").status == "unsubscribed"
    assert Subscriber.objects.get(email="active@example.org").frequency == "weekly"
    assert not Subscription.objects.filter(subscriber__email__in=["left@example.org", "active@example.org"]).exists()


def test_without_the_operators_word_nobody_is_imported_as_confirmed(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        plan = imports.import_subscribers((FILES / "subscribers.csv").read_bytes(), consent_confirmed=False)

    assert plan.confirmed == []
    assert not Subscriber.objects.filter(status="active").exists()
    assert len(mail.outbox) == 6


def test_planning_writes_nothing(known):
    plan = imports.plan_import((FILES / "subscribers.csv").read_bytes(), consent_confirmed=True)

    assert plan.touched == 3
    assert Subscriber.objects.count() == 3


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", (1, "the file is empty")),
        (b"email,colour\nx@example.org,red\n", (1, "unknown column 'colour'")),
        (b"email\nx@example.org\n", (1, "missing column 'topics'")),
        (b"email;topics\nx@example.org;robots\n", (1, "the columns are separated by semicolons")),
        (b"email,topics\n", (0, "The file has no subscriber rows.")),
        (b"email,topics\nx@example.org,caf\xe9\n", (2, "not UTF-8 text")),
    ],
)
def test_files_that_are_not_a_subscriber_list_are_refused(content, problem):
    with pytest.raises(imports.ImportRefused) as refused:
        imports.import_subscribers(content, consent_confirmed=True)

    line, message = refused.value.problems[0]
    assert (line, message[: len(problem[1])]) == problem


def test_the_export_imports_again_elsewhere(known, tmp_path, django_capture_on_commit_callbacks):
    import csv

    with django_capture_on_commit_callbacks(execute=True):
        imports.import_subscribers((FILES / "subscribers.csv").read_bytes(), consent_confirmed=True)
    exported = tmp_path / "export.csv"
    with exported.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(exports.subscriber_rows())
    rows = list(csv.DictReader(exported.open(encoding="utf-8")))
    assert {row["email"]: row["status"] for row in rows}["suppressed@example.org"] == "bounced"
    ada = next(row for row in rows if row["email"] == "ada@example.org")
    assert ada["topics"] == 'large language models; "speech recognition"'
    assert ada["timezone"] == "Europe/London"

    Subscriber.objects.all().delete()
    Topic.objects.all().delete()
    keep = tmp_path / "again.csv"
    with keep.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "topics", "frequency", "timezone"])
        writer.writerows(
            [row["email"], row["topics"], row["frequency"], row["timezone"]] for row in rows if row["topics"]
        )
    plan = imports.import_subscribers(keep.read_bytes(), consent_confirmed=False)
    assert plan.touched == 3
    assert sorted(Subscriber.objects.get(email="ada@example.org").topics.values_list("query", flat=True)) == [
        '"speech recognition"',
        "large language models",
    ]


def test_the_export_reads_two_queries_per_page(django_assert_num_queries):
    for n in range(5):
        subscriber = Subscriber.objects.create(email=f"p{n}@example.org", status="active")
        Subscription.objects.create(subscriber=subscriber, topic=Topic.objects.get_or_create(query=f"t{n % 2}")[0])

    with django_assert_num_queries(2 * 3 + 1):  # pages of 2: three full or partial, one empty
        rows = list(exports.subscriber_rows(page=2))

    assert len(rows) == 6


def test_topics_a_signup_would_refuse_are_refused_by_line():
    content = "email,topics\ngood@example.org,graph neural networks\nwords@example.org,the; of and\n"

    with pytest.raises(imports.ImportRefused) as refused:
        imports.import_subscribers(content.encode(), consent_confirmed=False)

    assert [line for line, _ in refused.value.problems] == [3]
    assert refused.value.problems[0][1].startswith("words@example.org: ")
    assert not refused.value.problems[0][1].endswith("..")
    assert not Subscriber.objects.exists()


def test_an_import_makes_no_query_per_row():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    lines = ["email,topics,consent"]
    lines += [f"p{n}@example.org,topic {n % 50}; shared topic,{'yes' if n % 2 else 'no'}" for n in range(3000)]

    with CaptureQueriesContext(connection) as queries:
        plan = imports.import_subscribers("\n".join(lines).encode(), consent_confirmed=True)

    # Bulk inserts in batches: about 15 queries on PostgreSQL; SQLite's limit on bound
    # parameters makes its batches of subscribers smaller (about 70 queries).
    assert len(queries) < 100
    assert (len(plan.confirmed), len(plan.invited)) == (1500, 1500)
    assert Subscription.objects.count() == 6000
