"""import_papers and load_sample_papers, the way an operator runs them."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from papers.models import ImportRun, Paper
from tests.papers import feeds

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_import_papers_prints_the_counts(tmp_path):
    page = tmp_path / "page.txt"
    page.write_text(feeds.text_page(feeds.samples(5)), encoding="utf-8")
    assert run("import_papers", str(page)) == "created 5, updated 0, unchanged 0"
    assert run("import_papers", str(page), "--format", "text") == "created 0, updated 0, unchanged 5"


def test_import_papers_from_a_url(feed_server):
    url = feed_server.add("/rss/cs.CL", feeds.rss(feeds.samples(2)))
    assert run("import_papers", url, "--format", "rss") == "created 2, updated 0, unchanged 0"


def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "day.json"
    bad.write_bytes(feeds.daily_json(feeds.samples(3))[:-40])
    with pytest.raises(CommandError) as caught:
        run("import_papers", str(bad))
    assert str(caught.value).startswith(f"{bad}: daily-json import failed: JSON ends early (truncated?)")
    assert Paper.objects.count() == 0
    assert ImportRun.objects.get().status == "failed"


def test_the_wrong_format_flag_is_refused(tmp_path):
    page = tmp_path / "page.txt"
    page.write_text(feeds.text_page(feeds.samples(1)), encoding="utf-8")
    with pytest.raises(CommandError, match=r"page.txt: atom import failed: malformed XML"):
        run("import_papers", str(page), "--format", "atom")


def test_long_imports_show_a_progress_bar(tmp_path, capsys):
    day = tmp_path / "day.json"
    day.write_bytes(feeds.daily_json(feeds.samples(1200)))
    assert run("import_papers", str(day)) == "created 1200, updated 0, unchanged 0"
    assert "1200/1200" in capsys.readouterr().err
    run("import_papers", str(day), "--no-progress")
    assert "1200/1200" not in capsys.readouterr().err


def test_import_papers_as_a_process(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    (tmp_path / "var").mkdir()
    env.update(VAR_DIR=str(tmp_path / "var"), DEBUG="1", LOG_LEVEL="WARNING")
    page = tmp_path / "page.txt"
    page.write_text(feeds.text_page(feeds.samples(4)), encoding="utf-8")

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )

    assert manage("migrate", "--noinput", "-v0").returncode == 0
    first = manage("import_papers", str(page))
    assert (first.returncode, first.stdout) == (0, "created 4, updated 0, unchanged 0\n")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Caf\xe9 title\n\n".encode("latin-1") + feeds.samples(1)[0].abstract.encode())
    failed = manage("import_papers", str(latin1))
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.strip().splitlines() == [
        f"CommandError: {latin1}: text import failed: is not valid utf-8 (no charset declared, so): "
        "byte 0xe9 at offset 3; re-save it as UTF-8 or declare its charset"
    ]


def test_load_sample_papers_is_idempotent_and_always_recent():
    assert run("load_sample_papers") == "sample papers: created 40, updated 0, unchanged 0"
    Paper.objects.update(first_seen_at=timezone.now() - timedelta(days=90))
    assert run("load_sample_papers") == "sample papers: created 0, updated 0, unchanged 40"
    assert Paper.objects.count() == 40
    recent = timezone.now() - timedelta(days=4)
    assert Paper.objects.filter(first_seen_at__gte=recent, first_seen_at__lte=timezone.now()).count() == 40
    assert Paper.objects.filter(source="sample").exclude(abstract="").count() == 40
    # Written for this project: no arXiv ids, no outside links.
    assert not Paper.objects.exclude(arxiv_id="").exists()
    assert set(Paper.objects.values_list("abs_url", "pdf_url", "page_url", "thumbnail_url")) == {("", "", "", "")}
    assert len(set(Paper.objects.values_list("upvotes", flat=True))) > 20
    # Each load is an import the dashboard lists, like any other source.
    runs = list(ImportRun.objects.order_by("started_at").values_list("format", "status", "created", "unchanged"))
    assert runs == [("sample", "ok", 40, 0), ("sample", "ok", 0, 40)]


def test_an_import_with_tasks_in_process_logs_no_warning(tmp_path, caplog, django_capture_on_commit_callbacks):
    """The embedded default (no broker): the import's follow-up task runs in-process with
    nothing to warn of. A bare ``memory://`` broker made kombu warn of a missing host on
    every import."""
    page = tmp_path / "page.txt"
    page.write_text(feeds.text_page(feeds.samples(3)), encoding="utf-8")
    with caplog.at_level("WARNING"), django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert run("import_papers", str(page)) == "created 3, updated 0, unchanged 0"
    assert callbacks  # the follow-up task was queued and ran
    assert [record.getMessage() for record in caplog.records if record.levelname == "WARNING"] == []
