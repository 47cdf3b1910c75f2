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
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from papers import importers
from papers.importers.base import BadInput, PaperRecord
from papers.importers.normalise import CleanPaper, normalise_record
from papers.models import ImportRun, Paper
from papers.signals import papers_stored

log = logging.getLogger(__name__)

CHUNK_SIZE = 500
USER_AGENT = "paper-digest/1.0 (+papers importer)"
# Fields an import may change on an existing paper (empty incoming values never erase).
TEXT_FIELDS = ("title", "abstract", "arxiv_id", "abs_url", "pdf_url", "page_url", "thumbnail_url")
LIST_FIELDS = ("authors", "categories")
VALUE_FIELDS = ("published_at", "upvotes", "comment_count")
# Feeds disagree on these (the paper page vs arXiv's announcement): the first known value
# stays, so two feeds of one paper do not flip it back and forth on every fetch.
FILL_ONLY_FIELDS = ("published_at", "page_url", "thumbnail_url")
_SOURCE_ENTRY = re.compile(rf"^({'|'.join(map(re.escape, importers.FORMATS))}):(?!//)(.+)$")


@dataclass(frozen=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}"


class ImportFailed(Exception):
    """An import that wrote nothing; ``str()`` is one line naming the source and the problem."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{source}: {self.reason}")


class FetchFailed(ImportFailed):
    """A network failure (connection, timeout, truncated body, 5xx): worth retrying later."""


# --- upsert -------------------------------------------------------------------------


def upsert_papers(
    records: Iterable[PaperRecord | CleanPaper],
    *,
    source: str,
    base_url: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> ImportResult:
    """Create new papers and update known ones (same key), all in one transaction.

    ``source`` is the format name stored on new papers. Upvotes and comment counts follow
    the latest import; the first-seen date is set on creation only. New and changed papers
    are announced (``papers_stored``, the ranking embeds them) before the transaction commits. ``progress``,
    given the number of papers, returns a tqdm-like bar (``update(n)``, ``close()``).
    Raises BadInput when a record cannot be stored (then nothing is written).
    """
    papers = _merge_by_key(
        record if isinstance(record, CleanPaper) else normalise_record(record, base_url=base_url) for record in records
    )
    try:
        return _upsert(papers, source=source, progress=progress)
    except IntegrityError:
        # Another import created some of these keys meanwhile: they are updates now.
        return _upsert(papers, source=source, progress=progress)


def _merge_by_key(papers: Iterable[CleanPaper]) -> dict[str, CleanPaper]:
    merged: dict[str, CleanPaper] = {}
    for paper in papers:
        earlier = merged.get(paper.key)
        if earlier is None:
            merged[paper.key] = paper
            continue
        for name, value in asdict(paper).items():
            if value not in (None, "", []):
                setattr(earlier, name, value)
    return merged


def _upsert(papers: dict[str, CleanPaper], *, source: str, progress) -> ImportResult:
    now = timezone.now()
    keys = list(papers)
    bar = progress(len(keys)) if progress else None
    created: list[Paper] = []
    changed: list[Paper] = []
    unchanged = 0
    try:
        with transaction.atomic():
            for start in range(0, len(keys), CHUNK_SIZE):
                chunk = keys[start : start + CHUNK_SIZE]
                existing = Paper.objects.in_bulk(chunk, field_name="key")
                new_papers, changed_papers = [], []
                for key in chunk:
                    paper = existing.get(key)
                    if paper is None:
                        new_papers.append(_new_paper(papers[key], source=source, now=now))
                    elif _apply(paper, papers[key]):
                        paper.updated_at = now
                        changed_papers.append(paper)
                    else:
                        unchanged += 1
                created.extend(Paper.objects.bulk_create(new_papers))
                if changed_papers:
                    Paper.objects.bulk_update(changed_papers, [*TEXT_FIELDS, *LIST_FIELDS, *VALUE_FIELDS, "updated_at"])
                    changed.extend(changed_papers)
                if bar is not None:
                    bar.update(len(chunk))
            if created or changed:
                papers_stored.send(sender=Paper, papers=created + changed)
    finally:
        if bar is not None:
            bar.close()
    return ImportResult(created=len(created), updated=len(changed), unchanged=unchanged)


def _new_paper(clean: CleanPaper, *, source: str, now) -> Paper:
    fields = asdict(clean)
    fields["upvotes"] = clean.upvotes or 0
    fields["comment_count"] = clean.comment_count or 0
    return Paper(**fields, source=source[:40], first_seen_at=now, updated_at=now)


def _apply(paper: Paper, clean: CleanPaper) -> bool:
    """Copy what the feed knows onto ``paper``; True when anything changed."""
    changed = False
    for name in (*TEXT_FIELDS, *LIST_FIELDS, *VALUE_FIELDS):
        value = getattr(clean, name)
        if value in (None, "", []) or getattr(paper, name) == value:
            continue
        if name in FILL_ONLY_FIELDS and getattr(paper, name) not in (None, "", []):
            continue
        setattr(paper, name, value)
        changed = True
    return changed


# --- reading sources ----------------------------------------------------------------


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


@dataclass
class Body:
    data: bytes
    content_type: str = ""
    charset: str | None = None
    url: str | None = None
    name: str = ""


def _too_big(size: int | str, limit: int) -> str:
    return f"is larger than the {limit}-byte limit (PAPER_MAX_BYTES): {size} bytes"


def read_file(path: str, *, max_bytes: int) -> Body:
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if file.is_dir():
            raise ImportFailed(path, "is a directory, not a file")
        if size > max_bytes:
            raise ImportFailed(path, _too_big(size, max_bytes))
        with file.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImportFailed(path, "no such file") from None
    except PermissionError:
        raise ImportFailed(path, "permission denied") from None
    if len(data) > max_bytes:
        raise ImportFailed(path, _too_big(f"more than {max_bytes}", max_bytes))
    return Body(data=data, name=file.name)


def fetch_url(
    url: str, *, timeout: float, max_bytes: int, retries: int = 2, backoff: float = 1.0, deadline: float | None = None
) -> Body:
    """GET ``url`` with a whole-download deadline and a size cap, retrying network
    failures (with exponential backoff); other failures raise at once. No retry starts
    that could run past ``deadline`` (a ``time.monotonic()`` value)."""
    for attempt in range(retries + 1):
        try:
            return _download(url, timeout=timeout, max_bytes=max_bytes)
        except FetchFailed as exc:
            delay = backoff * 2**attempt
            if attempt == retries or (deadline is not None and time.monotonic() + delay + 2 * timeout > deadline):
                raise
            log.warning(
                "paper source fetch failed, retrying in %s s: %s", delay, exc, extra={"source": url, "retry_in": delay}
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def _download(url: str, *, timeout: float, max_bytes: int) -> Body:
    started = time.monotonic()
    try:
        with requests.get(url, stream=True, timeout=timeout, headers={"User-Agent": USER_AGENT}) as response:
            status = response.status_code
            if status >= 500 or status == 429:
                raise FetchFailed(url, f"the server answered HTTP {status} {response.reason}")
            if status >= 400:
                raise ImportFailed(url, f"the server answered HTTP {status} {response.reason}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ImportFailed(url, _too_big(declared, max_bytes))
            chunks, size = [], 0
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise ImportFailed(url, _too_big(f"more than {max_bytes}", max_bytes))
                if time.monotonic() - started > timeout:
                    raise FetchFailed(url, f"the download took longer than {timeout} s (PAPER_FETCH_TIMEOUT)")
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type", "")
            charset = None
            if "charset=" in content_type.lower():
                charset = content_type.lower().split("charset=", 1)[1].split(";")[0].strip()
            return Body(data=b"".join(chunks), content_type=content_type, charset=charset, url=response.url, name=url)
    except requests.exceptions.ChunkedEncodingError as exc:
        raise FetchFailed(url, f"the download was cut short (truncated): {_short(exc)}") from None
    except requests.exceptions.ContentDecodingError as exc:
        raise FetchFailed(url, f"the body could not be decompressed: {_short(exc)}") from None
    except requests.Timeout:
        raise FetchFailed(url, f"timed out after {timeout} s (PAPER_FETCH_TIMEOUT)") from None
    except requests.ConnectionError as exc:
        raise FetchFailed(url, f"cannot connect: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise ImportFailed(url, f"cannot fetch: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


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
            raise ImportFailed(source_name, _too_big(len(data), settings.PAPER_MAX_BYTES))
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
            run.result = result = upsert_papers(records, source=fmt, base_url=body.url, progress=progress)
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
    run.save(update_fields=["format", "status", "finished_at", "created", "updated", "unchanged", "error"])


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
    line per source; a failing source does not stop the others.

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
