"""What the public pages show, each read with a fixed number of queries (pinned in
``tests/pages/test_query_counts.py``).

A paper is listed under the day it was announced (``Paper.announced_on``: arXiv's
announcement, a daily list's or a page's date heading), or, from a source that gives no
date, the day it was first seen in the site's time zone: ``papers.models.listing_day``,
an indexed expression, so a day, its neighbours and the latest day are index lookups.

Weeks and months are ordered by upvotes with a time decay: a paper's upvotes count half
as much for each period-length of age, counted from the end of its day back from the
period's end (or from now, while the period is still going):
``upvotes * 2 ** (-age / period length)``. A paper from the first day of a week has had a
week longer to gather votes than one from its last day; the decay puts the two on a par,
so a week is not just its first days.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from digestsite import cache as shared_cache
from pages import cache as page_cache
from pages import day_marks, periods
from pages.periods import DAILY, Period
from papers.latex import to_unicode
from papers.models import Paper, listing_day, listing_day_sql
from ranking.api import search_papers, similar_paper_ids, snippet_pieces, stored_similar_sql

MAX_LISTED = 100
SIMILAR_SHOWN = 6
LIST_FIELDS = (
    "id",
    "title",
    "abstract",
    "authors",
    "upvotes",
    "announced_on",
    "first_seen_at",
    "arxiv_id",
    "abs_url",
    "pdf_url",
)
PAPER_FIELDS = (*LIST_FIELDS, "published_at", "categories", "page_url", "updated_at")
SEARCH_LIMIT = 50
SEARCH_SNIPPET_CHARS = 240  # of the matching sentence, cut around its first searched word (CSS shows three lines)
# A list shows a two-line snippet of each abstract (``pages.text.SNIPPET_CHARS`` of plain
# text): its start is enough, whatever maths it has.
ABSTRACT_START_CHARS = 1000


# Lists and a day's neighbours are read in SQL: built by the ORM (the listing day's
# expression, twice more in subqueries) those queries cost more CPU than running them.
_TABLE = Paper._meta.db_table
_ENTRY_COLUMNS = "id, title, SUBSTR(abstract, 1, %s), authors, upvotes, arxiv_id, abs_url, pdf_url"


@dataclass(frozen=True, slots=True)
class Entry:
    """What a list shows of a paper: plain values, not a model instance (a list of a
    hundred costs a third of the CPU), and only the start of the abstract."""

    id: int
    title: str
    abstract: str
    authors: list
    upvotes: int
    arxiv_id: str
    abs_url: str
    pdf_url: str

    @property
    def pk(self) -> int:
        return self.id


def _entries(ids) -> dict[int, Entry]:
    """The entries of these papers, by id (one query)."""
    ids = [int(i) for i in ids]
    if not ids:
        return {}
    placeholders = ", ".join(["%s"] * len(ids))
    sql = f"SELECT {_ENTRY_COLUMNS} FROM {_TABLE} WHERE id IN ({placeholders})"  # noqa: S608 (our columns)
    return {entry.id: entry for entry in _fetch_entries(sql, [ABSTRACT_START_CHARS, *ids])}


def _fetch_entries(sql: str, params: list) -> list[Entry]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [Entry(*row[:3], _json(row[3]), *row[4:]) for row in rows]


def _day_entries(day: date) -> list[Entry]:
    """A day's papers by upvotes, then the newest, at most ``MAX_LISTED`` (one query)."""
    day_sql, day_params = listing_day_sql(connection)
    sql = (
        f"SELECT {_ENTRY_COLUMNS} FROM {_TABLE} WHERE {day_sql} = %s "  # noqa: S608 (our columns)
        "ORDER BY upvotes DESC, first_seen_at DESC LIMIT %s"
    )
    return _fetch_entries(sql, [ABSTRACT_START_CHARS, *day_params, day, MAX_LISTED])


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def _as_date(value) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


@dataclass
class Listing:
    period: Period
    papers: list = field(default_factory=list)
    previous: Period | None = None  # the nearest period before this one that has papers
    next: Period | None = None

    @property
    def nearest_day(self) -> date | None:
        """For an empty day: the closest day that has papers (the later one on a tie)."""
        before = self.previous.last_day if self.previous else None
        after = self.next.first_day if self.next else None
        if before is None or after is None:
            return before or after
        day = self.period.first_day
        return before if (day - before) < (after - day) else after


def _dated():
    """Papers with their listing day as ``day``."""
    return Paper.objects.annotate(day=listing_day())


def latest_day() -> date | None:
    """The most recent day that has papers (one query: the end of the day index)."""
    return _dated().aggregate(latest=Max("day"))["latest"]


def listing(period: Period, *, is_latest: bool = False) -> Listing:
    """The papers of a day (by upvotes, then the newest) or of a week or month (by decayed
    upvotes), at most ``MAX_LISTED``, and the periods before and after that have papers.

    Queries: a day two, a week or month three (the papers, the days around it)."""
    result = Listing(period)
    if period.kind == DAILY:
        result.papers = _day_entries(period.first_day)
    else:
        result.papers = _by_decayed_upvotes(period)
    previous, following = _days_around(period, is_latest=is_latest)
    result.previous = periods.period_of(period.kind, previous) if previous else None
    result.next = periods.period_of(period.kind, following) if following else None
    return result


def _days_around(period: Period, *, is_latest: bool) -> tuple[date | None, date | None]:
    """The nearest day before ``period`` that has papers and the nearest after it (none
    after the latest day): one query, each an index lookup."""
    day_sql, day_params = listing_day_sql(connection)
    before = f"(SELECT {day_sql} FROM {_TABLE} WHERE {day_sql} < %s ORDER BY 1 DESC LIMIT 1)"  # noqa: S608
    after = f"(SELECT {day_sql} FROM {_TABLE} WHERE {day_sql} > %s ORDER BY 1 LIMIT 1)"  # noqa: S608
    sql = f"SELECT {before}, {'NULL' if is_latest else after}"
    params = [*day_params, *day_params, period.first_day]
    if not is_latest:
        params += [*day_params, *day_params, period.last_day]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        before, after = cursor.fetchone()
    return _as_date(before), _as_date(after)


def listing_days(ids) -> set[date]:
    """The days the papers ``ids`` are listed under (one query)."""
    days = _dated().filter(pk__in=list(ids)).values_list("day", flat=True).distinct()
    return {_as_date(day) for day in days.order_by()}


def days_beside(days) -> set[date]:
    """The nearest day before and after each of ``days`` that has papers: one query, two
    index lookups a day; none for more days than ``day_marks.MAX_MARKED_DAYS``, which mark
    every day anyway."""
    days = sorted(days)
    if not days or len(days) > day_marks.MAX_MARKED_DAYS:
        return set()
    day_sql, day_params = listing_day_sql(connection)
    before = f"(SELECT {day_sql} FROM {_TABLE} WHERE {day_sql} < %s ORDER BY 1 DESC LIMIT 1)"  # noqa: S608
    after = f"(SELECT {day_sql} FROM {_TABLE} WHERE {day_sql} > %s ORDER BY 1 LIMIT 1)"  # noqa: S608
    params = []
    for day in days:
        params += [*day_params, *day_params, day] * 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join([before, after] * len(days)), params)
        found = cursor.fetchone()
    return {_as_date(day) for day in found if day is not None}


def _day(day: date):
    """A day's papers by upvotes, then the newest."""
    return _dated().filter(day=day).order_by("-upvotes", "-first_seen_at")


def decayed(upvotes: int, age_seconds: float, period_seconds: float) -> float:
    return upvotes * 2.0 ** (-max(age_seconds, 0.0) / period_seconds)


def _by_decayed_upvotes(period: Period) -> list:
    """Two queries: every paper's votes and day (small rows, the newest first), then the
    hundred shown. The decay is one factor per day; the sort keeps the newest first among
    equals."""
    reference = min(period.end, timezone.now())
    length = (period.end - period.start).total_seconds()
    rows = _dated().filter(day__gte=period.first_day, day__lte=period.last_day)
    rows = rows.order_by("-day", "-first_seen_at").values_list("id", "upvotes", "day")
    factors = {}
    for day in period.days_list():
        factors[day] = decayed(1, (reference - periods.midnight(day + timedelta(days=1))).total_seconds(), length)
    ids = [row[0] for row in sorted(rows, key=lambda row: -row[1] * factors[row[2]])[:MAX_LISTED]]
    found = _entries(ids)
    return [found[i] for i in ids if i in found]


def latest_days(days: int) -> list:
    """The papers of the ``days`` days up to the latest day that has papers, newest day
    first, then by upvotes, at most ``MAX_LISTED`` (the trending feed): two queries."""
    newest = latest_day()
    if newest is None:
        return []
    papers = _dated().filter(day__gte=newest - timedelta(days=days - 1)).order_by("-day", "-upvotes", "-first_seen_at")
    return list(papers.only(*LIST_FIELDS, "published_at")[:MAX_LISTED])


def paper_page(pk: int):
    """The paper and its similar papers (at most ``SIMILAR_SHOWN``): one query when its
    neighbours are stored (the paper, and the papers its stored list names:
    ``ranking.api.stored_similar_sql``; under load the round trip, not the query, was most
    of a made paper page's time). A paper without stored neighbours (no embedding, or its
    import's task has not run yet) has them searched for (``similar_paper_ids``), kept
    ``SIMILAR_CACHE_SECONDS`` per paper and version of it: three queries when kept, four
    on PostgreSQL otherwise."""
    paper, similar, listed = _paper_and_neighbours(pk)
    if paper is None:
        return None, []
    if not listed:
        return _paper_with_searched_neighbours(pk)
    return paper, similar[:SIMILAR_SHOWN]


# The paper page's columns in the model's field order (``Paper.from_db`` takes them so); the
# neighbours, shown as entries, need only ``Entry``'s: the others are NULL for them (loading
# the timestamps of eleven rows was a tenth of a made paper page's CPU).
_PAGE_FIELDS = [
    f.attname for f in Paper._meta.concrete_fields if f.attname in PAPER_FIELDS and f.attname != "updated_at"
]
_ENTRY_FIELDS = {"id", "title", "authors", "upvotes", "arxiv_id", "abs_url", "pdf_url"}
_MOMENT_FIELDS = ("published_at", "first_seen_at")


def _page_column(name: str) -> tuple[str, list]:
    if name in _ENTRY_FIELDS:
        return name, []
    if name == "abstract":
        return "CASE WHEN id = %s THEN abstract ELSE SUBSTR(abstract, 1, %s) END", [ABSTRACT_START_CHARS]
    return f"CASE WHEN id = %s THEN {name} END", []


def _aware(value):
    """A timestamp as the ORM gives it: aware (SQLite's driver gives naive UTC, or text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def _paper_and_neighbours(pk: int) -> tuple[Paper | None, list[Entry], bool]:
    """A paper, the entries of its stored neighbours in order, and whether it has a stored
    list, in one query (SQL: the ORM's compiling cost a paper page more CPU than the query)."""
    pk = int(pk)
    columns, params = [], []
    for name in _PAGE_FIELDS:
        sql, extra = _page_column(name)
        columns.append(sql)
        params += ([pk] if "CASE" in sql else []) + extra
    stored = stored_similar_sql(connection.vendor)
    sql = (
        f"SELECT {', '.join(columns)}, -1, {stored.listed} FROM {_TABLE} WHERE id = %s "  # noqa: S608 (our columns)
        f"UNION ALL SELECT {', '.join(columns)}, n.pos, 0 "
        f"FROM ({stored.rows}) AS n JOIN {_TABLE} ON {_TABLE}.id = n.nid"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pk, pk, *params, pk])
        rows = cursor.fetchall()
    paper, entries, has_list = None, [], False
    for row in sorted(rows, key=lambda row: row[-2]):
        values = dict(zip(_PAGE_FIELDS, row[:-2], strict=True))  # then its place, and whether it has a list
        values["authors"] = _json(values["authors"])
        if values["id"] == pk:
            has_list = bool(row[-1])
            values["categories"] = _json(values["categories"])
            for name in _MOMENT_FIELDS:
                values[name] = _aware(values[name])
            values["announced_on"] = _as_date(values["announced_on"])
            paper = Paper.from_db(connection.alias, _PAGE_FIELDS, [values[name] for name in _PAGE_FIELDS])
        else:
            entries.append(
                Entry(
                    values["id"],
                    values["title"],
                    values["abstract"] or "",
                    values["authors"],
                    values["upvotes"],
                    values["arxiv_id"],
                    values["abs_url"],
                    values["pdf_url"],
                )
            )
    return paper, entries, has_list


def _paper_with_searched_neighbours(pk: int):
    paper = Paper.objects.only(*PAPER_FIELDS).filter(pk=pk).order_by().first()
    if paper is None:
        return None, []
    key = f"pages:similar:{paper.pk}:{paper.updated_at.timestamp()}"
    ids = shared_cache.get(key)
    if ids is None:
        ids = similar_paper_ids(paper, limit=SIMILAR_SHOWN)
        shared_cache.set(key, ids, settings.SIMILAR_CACHE_SECONDS)
    if not ids:
        return paper, []
    found = _entries(ids)
    return paper, [found[i] for i in ids if i in found]


class Found(NamedTuple):
    """A search result as the page shows it: the abstract sentence that best matches the
    search, as (text, is_searched_word) pieces (a query-biased snippet: the searched words
    in bold), and ``note`` where no searched word is in the paper ("close in meaning")."""

    paper: Any
    score: float
    snippet: tuple = ()
    note: str = ""


@dataclass
class SearchPage:
    text: str
    papers: list[Found] = field(default_factory=list)
    total: int = 0
    seconds: float = 0.0


def _found_row(query, result) -> tuple:
    """What a search keeps of a result (plain values, cached): id, score, snippet, note.
    ``query``: the search as the ranking parsed it (``SearchResult.query``)."""
    snippet = snippet_pieces(query.text, to_unicode(result.paper.abstract or ""), SEARCH_SNIPPET_CHARS)
    by_meaning_only = not result.matched_terms and query.free_text
    note = "Close in meaning, without the words searched for" if by_meaning_only else ""
    return (result.paper.pk, result.score, snippet, note)


def search(
    text: str, *, day: date | None = None, since: date | None = None, limit: int = SEARCH_LIMIT, entries: bool = False
) -> SearchPage:
    """Ranked search results (only ``day``'s papers, or those since ``since``, when given),
    cached per query for ``SEARCH_CACHE_SECONDS`` as ids, until the papers change (the
    pages version, ``pages.cache``): a cached search is one query,
    for the papers' display fields (``Entry`` items with ``entries``, for a list; else
    papers, for feeds and the API)."""
    text = " ".join((text or "").split())
    digest = hashlib.blake2b(f"{text}\n{day}\n{since}\n{limit}".encode(), digest_size=16).hexdigest()
    key = f"pages:found:{page_cache.version()}:{digest}"  # "found": rows with their snippets
    ranked = []  # this caller's own ranking, if it made it: its papers are loaded already

    def rank() -> dict:
        found = search_papers(text, limit=limit, first_day=day or since, last_day=day)
        ranked.append(found)
        return {
            "rows": [_found_row(found.query, r) for r in found.papers],
            "total": found.total,
            "seconds": found.seconds,
        }

    cached = shared_cache.get(key)
    if cached is None:  # ranked once however many ask for it meanwhile (right after an import, many do)
        cached = shared_cache.computed_once(key, rank, settings.SEARCH_CACHE_SECONDS)
    if ranked:
        by_id = {r.paper.pk: r.paper for r in ranked[0].papers}
    else:
        ids = [row[0] for row in cached["rows"]]
        by_id = _entries(ids) if entries else Paper.objects.only(*LIST_FIELDS, "published_at").in_bulk(ids)
    papers = [Found(by_id[row[0]], *row[1:]) for row in cached["rows"] if row[0] in by_id]
    return SearchPage(text, papers, cached["total"], cached["seconds"])


def api_papers(*, q: str, date: date | None, limit: int, base_url: str) -> dict:
    """The API's answer: a search when ``q`` is given (within ``date`` when given), else the
    papers of ``date`` (default: the latest day), by upvotes."""
    if q:
        # At least the search page's number of results: the two share one cached ranking.
        found = search(q, day=date, limit=max(limit, SEARCH_LIMIT)).papers[:limit]
        rows = [(result.paper, result.score) for result in found]
    else:
        day = date or latest_day()
        papers = _day(day).only(*LIST_FIELDS, "published_at")[:limit] if day else []
        rows = [(paper, None) for paper in papers]
    return {"papers": [_api_paper(paper, score, base_url) for paper, score in rows]}


def _api_paper(paper, score, base_url: str) -> dict:
    published = paper.published_at or paper.first_seen_at
    data = {
        "date": periods.listed_on(paper).isoformat(),
        "id": paper.pk,
        "arxiv_id": paper.arxiv_id or None,
        "title": paper.title,
        "authors": list(paper.authors or []),
        "abstract": paper.abstract,
        "published": published.isoformat() if published else None,
        "upvotes": paper.upvotes,
        "url": base_url + paper.get_absolute_url(),
    }
    if score is not None:
        data["score"] = round(float(score), 4)
    return data
