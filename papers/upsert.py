"""Storing papers: one row per paper, whatever sources it came from.

A paper is known by its arXiv id (without version), else its DOI, else its normalised
title. An incoming paper matches a stored one by key, then arXiv id, then DOI, then title,
as long as they do not disagree on an arXiv id or a DOI; so the same paper from the daily
JSON (with an id) and from a page or feed without one is one row, and the row's key
becomes the strongest identity it has. Values a source adds (upvotes, links, authors) are
merged in; empty values never erase; the date that dates a paper is set once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from papers.importers.base import PaperRecord
from papers.importers.normalise import CleanPaper, normalise_record, paper_key
from papers.models import Paper
from papers.signals import papers_stored

CHUNK_SIZE = 500
# Fields an import may change on an existing paper (empty incoming values never erase).
TEXT_FIELDS = ("title", "title_key", "abstract", "arxiv_id", "doi", "abs_url", "pdf_url", "page_url", "thumbnail_url")
LIST_FIELDS = ("authors", "categories")
VALUE_FIELDS = ("published_at", "announced_on", "upvotes", "comment_count")
# Feeds disagree on these (the paper page vs arXiv's announcement): the first known value
# stays, so two feeds of one paper do not flip it back and forth, and a re-import never
# moves a paper to another day.
FILL_ONLY_FIELDS = ("published_at", "announced_on", "page_url", "thumbnail_url")
STORED_FIELDS = ("key", *TEXT_FIELDS, *LIST_FIELDS, *VALUE_FIELDS, "updated_at")
_EMPTY = (None, "", [])


@dataclass(frozen=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # entries without a title, replacements of papers we do not have

    def __str__(self) -> str:
        text = f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}"
        return f"{text}, skipped {self.skipped}" if self.skipped else text


def upsert_papers(
    records: Iterable[PaperRecord | CleanPaper],
    *,
    source: str,
    base_url: str | None = None,
    progress: Callable[[int], object] | None = None,
    skipped: int = 0,
) -> ImportResult:
    """Create new papers and update known ones, all in one transaction.

    ``source`` is the format name stored on new papers; ``skipped`` counts entries the
    parser already left out. Upvotes and comment counts follow the latest import; the
    first-seen date is set on creation only. New and changed papers are announced
    (``papers_stored``, the ranking embeds them) before the transaction commits.
    ``progress``, given the number of papers, returns a tqdm-like bar (``update(n)``,
    ``close()``). Raises BadInput when a record cannot be stored (then nothing is written).
    """
    papers = merge_batch(
        record if isinstance(record, CleanPaper) else normalise_record(record, base_url=base_url) for record in records
    )
    try:
        result = _upsert(papers, source=source, progress=progress)
    except IntegrityError:
        # Another import created some of these keys meanwhile: they are updates now.
        result = _upsert(papers, source=source, progress=progress)
    return ImportResult(result.created, result.updated, result.unchanged, result.skipped + skipped)


def _compatible(stored, incoming: CleanPaper) -> bool:
    """Two descriptions may be one paper unless they name different arXiv ids or DOIs."""
    return not (stored.arxiv_id and incoming.arxiv_id and stored.arxiv_id != incoming.arxiv_id) and not (
        stored.doi and incoming.doi and stored.doi != incoming.doi
    )


def _combine(earlier: CleanPaper, later: CleanPaper) -> None:
    for name, value in asdict(later).items():
        if name in ("key", "update_only") or value in _EMPTY:
            continue
        if name in FILL_ONLY_FIELDS and getattr(earlier, name) not in _EMPTY:
            continue
        setattr(earlier, name, value)
    earlier.update_only = earlier.update_only and later.update_only
    earlier.key = paper_key(arxiv_id=earlier.arxiv_id, doi=earlier.doi, title=earlier.title)


def merge_batch(papers: Iterable[CleanPaper]) -> list[CleanPaper]:
    """One CleanPaper per paper of the batch: later values win, the first date stays."""
    merged: list[CleanPaper] = []
    by_arxiv: dict[str, CleanPaper] = {}
    by_doi: dict[str, CleanPaper] = {}
    by_title: dict[str, CleanPaper] = {}
    for paper in papers:
        earlier = by_arxiv.get(paper.arxiv_id) if paper.arxiv_id else None
        for index, value in ((by_doi, paper.doi), (by_title, paper.title_key)):
            if earlier is None and value and value in index and _compatible(index[value], paper):
                earlier = index[value]
        if earlier is None:
            merged.append(paper)
            earlier = paper
        else:
            _combine(earlier, paper)
        for index, value in ((by_arxiv, earlier.arxiv_id), (by_doi, earlier.doi), (by_title, paper.title_key)):
            if value:
                index.setdefault(value, earlier)
    return merged


class _Stored:
    """The stored papers a chunk may match, by each identity, each claimed once."""

    def __init__(self, chunk: list[CleanPaper]):
        condition = Q(key__in=[p.key for p in chunk]) | Q(title_key__in=[p.title_key for p in chunk])
        arxiv_ids = [p.arxiv_id for p in chunk if p.arxiv_id]
        dois = [p.doi for p in chunk if p.doi]
        if arxiv_ids:
            condition |= Q(arxiv_id__in=arxiv_ids)
        if dois:
            condition |= Q(doi__in=dois)
        self.index: dict[tuple[str, str], list[Paper]] = defaultdict(list)
        for row in Paper.objects.filter(condition).order_by("pk"):
            for field in ("key", "arxiv_id", "doi", "title_key"):
                if getattr(row, field):
                    self.index[field, getattr(row, field)].append(row)
        self.claimed: set[int] = set()

    def match(self, paper: CleanPaper) -> Paper | None:
        for field in ("key", "arxiv_id", "doi", "title_key"):
            for row in self.index.get((field, getattr(paper, field)), ()) if getattr(paper, field) else ():
                if row.pk not in self.claimed and _compatible(row, paper):
                    self.claimed.add(row.pk)
                    return row
        return None


def _upsert(papers: list[CleanPaper], *, source: str, progress) -> ImportResult:
    now = timezone.now()
    bar = progress(len(papers)) if progress else None
    created: list[Paper] = []
    changed: list[Paper] = []
    earlier_days = set()  # days that changed papers were listed under before this import
    unchanged = skipped = 0
    try:
        with transaction.atomic():
            for start in range(0, len(papers), CHUNK_SIZE):
                chunk = papers[start : start + CHUNK_SIZE]
                stored = _Stored(chunk)
                new_papers, changed_papers = [], []
                for paper in chunk:
                    row = stored.match(paper)
                    if row is None and paper.update_only:
                        skipped += 1
                    elif row is None:
                        new_papers.append(_new_paper(paper, source=source, now=now))
                    elif _apply_noting_day(row, paper, earlier_days):
                        row.updated_at = now
                        changed_papers.append(row)
                    else:
                        unchanged += 1
                if changed_papers:  # first: a paper may hand its key over to a stronger one
                    Paper.objects.bulk_update(changed_papers, STORED_FIELDS)
                    changed.extend(changed_papers)
                created.extend(Paper.objects.bulk_create(new_papers))
                if bar is not None:
                    bar.update(len(chunk))
            if created or changed:
                papers_stored.send(sender=Paper, papers=created + changed, earlier_days=earlier_days)
    finally:
        if bar is not None:
            bar.close()
    return ImportResult(created=len(created), updated=len(changed), unchanged=unchanged, skipped=skipped)


def _new_paper(clean: CleanPaper, *, source: str, now) -> Paper:
    fields = asdict(clean)
    del fields["update_only"]
    fields["upvotes"] = clean.upvotes or 0
    fields["comment_count"] = clean.comment_count or 0
    return Paper(**fields, source=source[:40], first_seen_at=now, updated_at=now)


def _apply_noting_day(paper: Paper, clean: CleanPaper, earlier_days: set) -> bool:
    """``_apply``, adding the paper's listing day to ``earlier_days`` if it moves."""
    earlier = paper.listing_date()
    changed = _apply(paper, clean)
    if changed and paper.listing_date() != earlier:
        earlier_days.add(earlier)
    return changed


def _apply(paper: Paper, clean: CleanPaper) -> bool:
    """Copy what the feed knows onto ``paper``; True when anything changed."""
    changed = False
    for name in (*TEXT_FIELDS, *LIST_FIELDS, *VALUE_FIELDS):
        value = getattr(clean, name)
        if value in _EMPTY or getattr(paper, name) == value:
            continue
        if name in FILL_ONLY_FIELDS and getattr(paper, name) not in _EMPTY:
            continue
        setattr(paper, name, value)
        changed = True
    # Known by its title (or DOI) and now by a DOI (or arXiv id): the stronger key wins.
    # A mere title change never rekeys a paper.
    key = paper_key(arxiv_id=paper.arxiv_id, doi=paper.doi, title=paper.title)
    if _strength(key) > _strength(paper.key):
        paper.key = key
        changed = True
    return changed


def _strength(key: str) -> int:
    return 0 if key.startswith("title:") else 1 if key.startswith("doi:") else 2
