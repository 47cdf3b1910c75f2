"""Bringing papers in: upsert records, import a file/URL/upload, fetch the configured sources.

Every import is one transaction: bad input raises ``ImportFailed`` (one line: the
source, then what is wrong) and writes no paper. Each import of a source is recorded as
an ``ImportRun`` (result or error) for the dashboard.

``settings.PAPER_SOURCES`` entries are a URL or a file path, optionally prefixed with a
format name to skip detection: ``rss:https://rss.arxiv.org/rss/cs.CL``,
``daily-json:https://huggingface.co/api/daily_papers``, ``text:/srv/feeds/page.txt``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from papers import importers
from papers.fetch import Body, FetchFailed, ImportFailed, fetch_url, is_url, read_file, too_big
from papers.importers.base import BadInput, PaperRecord
from papers.importers.normalise import normalise_record
from papers.models import ImportRun, Paper
from papers.upsert import ImportResult, upsert_papers

__all__ = [
    "Body",
    "FetchFailed",
    "ImportFailed",
    "ImportResult",
    "fetch_sources",
    "fetch_url",
    "import_bytes",
    "import_source",
    "is_url",
    "normalise_record",
    "read_file",
    "upsert_papers",
]

log = logging.getLogger(__name__)

_SOURCE_ENTRY = re.compile(rf"^({'|'.join(map(re.escape, importers.FORMATS))}):(?!//)(.+)$")


# --- reading sources ----------------------------------------------------------------


def read_source(source: str, *, deadline: float | None = None) -> Body:
    if is_url(source):
        return fetch_url(
            source,
            timeout=settings.PAPER_FETCH_TIMEOUT,
            max_bytes=settings.PAPER_MAX_BYTES,
            retries=settings.PAPER_FETCH_RETRIES,
            backoff=settings.PAPER_FETCH_BACKOFF,
            deadline=deadline,
        )
    return read_file(source, max_bytes=settings.PAPER_MAX_BYTES)


# --- imports ------------------------------------------------------------------------


def import_source(source: str, *, fmt: str = "auto", progress=None, deadline: float | None = None) -> ImportResult:
    """Import a file path or an http(s) URL; ``fmt`` is a format name or "auto"."""
    return _recorded_import(source, fmt, lambda: read_source(source, deadline=deadline), progress)


def import_bytes(data: bytes, *, fmt: str = "auto", source_name: str, progress=None) -> ImportResult:
    """Import an uploaded file's bytes; ``source_name`` (e.g. the file name) labels the run."""

    def body() -> Body:
        if len(data) > settings.PAPER_MAX_BYTES:
            raise ImportFailed(source_name, too_big(len(data), settings.PAPER_MAX_BYTES))
        return Body(data=data, name=source_name)

    return _recorded_import(source_name, fmt, body, progress)


def _recorded_import(source: str, fmt: str, load: Callable[[], Body], progress) -> ImportResult:
    if fmt != "auto" and fmt not in importers.FORMATS:
        raise ImportFailed(source, f"unknown format {fmt!r} (choose from auto, {', '.join(importers.FORMATS)})")
    with _import_run(source, "" if fmt == "auto" else fmt) as run:
        try:
            body = load()
            if fmt == "auto":
                fmt = importers.detect_format(body.data, name=body.name, content_type=body.content_type)
                run.format = fmt
            records = importers.parse(body.data, fmt, url=body.url, charset=body.charset)
            run.result = result = upsert_papers(
                records, source=fmt, base_url=body.url, progress=progress, skipped=getattr(records, "skipped", 0)
            )
        except BadInput as exc:
            raise ImportFailed(source, f"{fmt} import failed: {exc}" if fmt != "auto" else str(exc)) from None
    log.info(
        "paper source imported: %s (%s): %s",
        source,
        fmt,
        result,
        extra={
            "source": source,
            "format": fmt,
            "papers_created": result.created,
            "papers_updated": result.updated,
            "papers_unchanged": result.unchanged,
            "papers_skipped": result.skipped,
        },
    )
    return result


@contextmanager
def _import_run(source: str, fmt: str):
    """An ``ImportRun`` row for the import done inside: finished OK with the result the
    body sets on it (``run.result``), or FAILED with the reason of what it raised."""
    run = ImportRun.objects.create(source=source[:500], format=fmt)
    run.result = None
    try:
        yield run
    except ImportFailed as exc:
        _finish(run, error=exc.reason)
        raise
    except Exception as exc:
        _finish(run, error=f"unexpected error: {exc!r}")
        raise
    _finish(run, result=run.result)


def _finish(run: ImportRun, *, result: ImportResult | None = None, error: str = "") -> None:
    run.finished_at = timezone.now()
    run.status = ImportRun.Status.FAILED if error else ImportRun.Status.OK
    run.error = error
    if result is not None:
        run.created, run.updated, run.unchanged = result.created, result.updated, result.unchanged
        run.skipped = result.skipped
    run.save(update_fields=["format", "status", "finished_at", "created", "updated", "unchanged", "skipped", "error"])


# --- scheduled fetching -------------------------------------------------------------


def parse_source_entry(entry: str) -> tuple[str, str]:
    """``"rss:https://..."`` -> ("rss", "https://..."); a bare URL or path -> ("auto", it)."""
    match = _SOURCE_ENTRY.match(entry.strip())
    if match:
        return match.group(1), match.group(2).strip()
    return "auto", entry.strip()


@dataclass
class FetchReport:
    results: dict[str, ImportResult] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)  # failed on the network: worth a later try
    postponed: list[str] = field(default_factory=list)  # not tried: the time budget ran out

    @property
    def to_retry(self) -> list[str]:
        return self.unreachable + self.postponed


def fetch_sources(sources: list[str] | None = None, *, time_budget: float | None = None) -> FetchReport:
    """Import each configured source (``settings.PAPER_SOURCES`` unless given), one log
    line per source; a failing source, whatever it raised, does not stop the others.

    With ``time_budget`` (seconds), no source or retry starts that could end after it;
    the sources left over are reported as postponed (the task runs them later).
    """
    report = FetchReport()
    entries = settings.PAPER_SOURCES if sources is None else sources
    deadline = time.monotonic() + time_budget if time_budget is not None else None
    worst_case = 2 * settings.PAPER_FETCH_TIMEOUT  # connect + whole-download deadline
    for number, entry in enumerate(entries):
        if deadline is not None and number and time.monotonic() + worst_case > deadline:
            report.postponed = list(entries[number:])
            log.warning("paper sources postponed, out of time: %s", ", ".join(report.postponed))
            break
        fmt, location = parse_source_entry(entry)
        try:
            result = import_source(location, fmt=fmt, deadline=deadline)
        except FetchFailed as exc:
            report.failed[entry] = exc.reason
            report.unreachable.append(entry)
            log.warning("paper source unreachable: %s", exc, extra={"source": location, "error": exc.reason})
        except ImportFailed as exc:
            report.failed[entry] = exc.reason
            log.error("paper source import failed: %s", exc, extra={"source": location, "error": exc.reason})
        except Exception as exc:  # a bug or a database hiccup: recorded on its run; the next source still runs
            report.failed[entry] = f"unexpected error: {exc!r}"
            log.exception("paper source import failed unexpectedly: %s", location, extra={"source": location})
        else:
            report.results[entry] = result
    return report


# --- bundled sample papers ----------------------------------------------------------

SAMPLE_PAPERS_FILE = Path(__file__).resolve().parent / "sample_data" / "sample_papers.json"
SAMPLE_SOURCE = "sample"


def load_sample_papers(*, now=None) -> ImportResult:
    """Load the bundled sample papers (written for this project; no real ids or links).

    Idempotent: known papers are matched by title key. Each run moves their first-seen
    and published dates to a few hours or days before ``now`` so a fresh install always
    has recent papers for previews and digests.
    """
    import json
    from datetime import timedelta

    now = now or timezone.now()
    entries = json.loads(SAMPLE_PAPERS_FILE.read_text(encoding="utf-8"))
    records = [
        PaperRecord(
            title=entry["title"],
            abstract=entry["abstract"],
            authors=entry["authors"],
            categories=entry["categories"],
            upvotes=entry["upvotes"],
            comment_count=entry["comments"],
        )
        for entry in entries
    ]
    # Recorded as a run: the dashboard's "last import per source" shows it.
    with _import_run(f"bundled {SAMPLE_PAPERS_FILE.name}", SAMPLE_SOURCE) as run, transaction.atomic():
        run.result = result = upsert_papers(records, source=SAMPLE_SOURCE)
        papers = Paper.objects.in_bulk([normalise_record(r).key for r in records], field_name="key")
        for record, entry in zip(records, entries, strict=True):
            paper = papers[normalise_record(record).key]
            paper.first_seen_at = now - timedelta(hours=entry["hours_ago"])
            paper.published_at = paper.first_seen_at - timedelta(days=1)
        Paper.objects.bulk_update(papers.values(), ["first_seen_at", "published_at"])
    return result
