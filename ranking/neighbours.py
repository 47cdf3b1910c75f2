"""Each paper's nearest papers by sentence embedding, stored (``PaperNeighbours``) when papers
are stored, so that a paper page reads its "similar papers" with one indexed query instead
of searching for them on every view (``bench/README.md``, site_load).

``update(paper_ids)`` (``ranking.tasks.store_neighbours``, queued after each import): the
neighbours of these new or changed papers among every embedded paper, and these papers put
into the lists of older papers they are nearer to than those lists' farthest. Bounded work:
one pass over the stored embeddings in blocks of ``BLOCK`` (the batch's vectors times the
block's: at most ``BATCH`` x ``BLOCK`` cosines in memory), then writes only the lists that
change. Exact for the batch; an older list gains a new paper whenever it is among its
``KEPT`` nearest. A paper whose text changed is placed again in its new neighbours' lists,
but lists that held it at its old place keep it until their own paper changes; a deleted
paper's id stays in the lists that hold it and the page skips it (``KEPT`` is more than a
page shows for that). Papers without an embedding get no list: the page falls back to
``ranking.search.similar_paper_ids`` (lexical without the model).

``missing()`` finds the embedded papers that have no list (after an upgrade, or an import
whose task failed): ``manage.py store_neighbours`` computes them, batch by batch.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
from django.db import connection, transaction

from ranking import semantic, store
from ranking.fusion import PAPER_COSINE_ONE, PAPER_COSINE_ZERO
from ranking.models import PaperEmbedding, PaperNeighbours
from ranking.search import SIMILAR_MIN
from ranking.signals import neighbours_stored

KEPT = 10  # neighbours kept per paper (a page shows six)
BLOCK = 4096  # stored embeddings compared at a time
BATCH = 500  # papers per update (per task)


def min_cosine() -> float:
    """The cosine of ``search.SIMILAR_MIN`` on the 0..1 paper scale (``fusion.paper_scale``):
    a neighbour must be at least this close."""
    return PAPER_COSINE_ZERO + SIMILAR_MIN * (PAPER_COSINE_ONE - PAPER_COSINE_ZERO)


def stored_ids(paper_id: int) -> list[int] | None:
    """The stored neighbours of a paper, closest first; None when it has no list (one query)."""
    table = PaperNeighbours._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ids FROM {table} WHERE paper_id = %s", [int(paper_id)])  # noqa: S608 (our table)
        row = cursor.fetchone()
    if row is None:
        return None
    ids = json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]
    return [int(i) for i in ids]


class StoredIdsSql(NamedTuple):
    """SQL reading a paper's stored neighbours, for a query that reads them with the papers
    they name in one round trip (``pages.selectors.paper_page``); each has one parameter,
    the paper's id. ``rows``: a row per neighbour (``nid``, its id; ``pos``, its place,
    closest first). ``listed``: 1 when the paper has a list (perhaps empty), else 0."""

    rows: str
    listed: str


def stored_ids_sql(vendor: str) -> StoredIdsSql:
    table = PaperNeighbours._meta.db_table
    if vendor == "postgresql":
        elements = f"jsonb_array_elements_text({table}.ids) WITH ORDINALITY AS e(value, pos)"
        rows = f"SELECT (e.value)::bigint AS nid, e.pos AS pos FROM {table} CROSS JOIN LATERAL {elements}"  # noqa: S608
    else:
        rows = f"SELECT CAST(e.value AS INTEGER) AS nid, e.key AS pos FROM {table}, json_each({table}.ids) AS e"  # noqa: S608
    return StoredIdsSql(
        rows=f"{rows} WHERE {table}.paper_id = %s",
        listed=f"(SELECT COUNT(*) FROM {table} WHERE paper_id = %s)",  # noqa: S608 (our table)
    )


def update(paper_ids) -> int:
    """Compute and store the neighbours of these papers (those with a current embedding)
    and offer them to older papers' lists; returns how many lists were written."""
    ids = sorted({int(i) for i in paper_ids})
    written = 0
    for start in range(0, len(ids), BATCH):
        written += _update_batch(ids[start : start + BATCH])
    return written


def _update_batch(ids: list[int]) -> int:
    vectors = store.paper_vectors(ids)
    new_ids = np.array([i for i in ids if i in vectors], dtype=np.int64)
    if not len(new_ids):
        return 0
    queries = np.stack([vectors[int(i)] for i in new_ids]).astype(np.float32)
    best_ids = np.full((len(new_ids), KEPT), -1, dtype=np.int64)
    best_cos = np.full((len(new_ids), KEPT), -np.inf, dtype=np.float32)
    offers: dict[int, dict[int, float]] = {}
    for block_ids, block, farthest in _blocks():
        cosines = queries @ block.T
        cosines[np.equal.outer(new_ids, block_ids)] = -np.inf  # not its own neighbour
        best_ids, best_cos = merge_top(best_ids, best_cos, block_ids, cosines, KEPT)
        _collect_offers(offers, new_ids, block_ids, cosines, farthest)
    lists = {int(paper): _kept(best_ids[row], best_cos[row]) for row, paper in enumerate(new_ids)}
    written = save(lists) + _offer(offers)
    neighbours_stored.send(sender=PaperNeighbours, paper_ids=[int(i) for i in new_ids])
    return written


def nearest_among(ids: np.ndarray, vectors: np.ndarray) -> dict[int, list[tuple[int, float]]]:
    """Each paper's nearest within this pool (every pair, ``BATCH`` rows at a time), for
    ``save``: for loading many papers at once (``bench/site_data.py``), where ``update``
    would pass over the whole store once per batch."""
    ids = np.asarray(ids, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float32)
    lists = {}
    for start in range(0, len(ids), BATCH):
        rows = ids[start : start + BATCH]
        cosines = vectors[start : start + BATCH] @ vectors.T
        cosines[np.equal.outer(rows, ids)] = -np.inf
        empty_ids = np.full((len(rows), KEPT), -1, dtype=np.int64)
        empty_cos = np.full((len(rows), KEPT), -np.inf, dtype=np.float32)
        best_ids, best_cos = merge_top(empty_ids, empty_cos, ids, cosines, KEPT)
        for row, paper in enumerate(rows):
            lists[int(paper)] = _kept(best_ids[row], best_cos[row])
    return lists


def _blocks():
    """(ids, vectors, farthest) of the stored current embeddings, ``BLOCK`` at a time by id;
    ``farthest`` is each paper's list's (NaN for a paper that has none yet)."""
    last = 0
    while True:
        rows = list(
            PaperEmbedding.objects.filter(paper_id__gt=last)
            .order_by("paper_id")
            .values_list("paper_id", "vector", "model", "paper__neighbours__farthest")[:BLOCK]
        )
        if not rows:
            return
        last = rows[-1][0]
        width = semantic.DIMENSIONS * 4
        rows = [row for row in rows if store.is_current_model(row[2]) and row[1] and len(row[1]) == width]
        if rows:
            ids = np.array([row[0] for row in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(bytes(row[1]) for row in rows), dtype=np.float32)
            farthest = np.array([np.nan if row[3] is None else row[3] for row in rows], dtype=np.float32)
            yield ids, vectors.reshape(len(rows), semantic.DIMENSIONS), farthest


def merge_top(best_ids, best_cos, ids, cosines, k: int):
    """The ``k`` closest per row of the running best (``best_ids``/``best_cos``, n x k) and of
    a block (``ids``, ``cosines`` n x len(ids)), closest first."""
    take = min(k, cosines.shape[1])
    if take == 0:
        return best_ids, best_cos
    part = np.argpartition(-cosines, take - 1, axis=1)[:, :take]
    all_cos = np.concatenate([best_cos, np.take_along_axis(cosines, part, axis=1)], axis=1)
    all_ids = np.concatenate([best_ids, ids[part]], axis=1)
    order = np.argsort(-all_cos, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(all_ids, order, axis=1), np.take_along_axis(all_cos, order, axis=1)


def _collect_offers(offers, new_ids, block_ids, cosines, farthest) -> None:
    """Older papers of the block (with a list, not in the batch) some new paper is nearer
    to than their list's farthest: remember those new papers and cosines."""
    closest = cosines.max(axis=0)
    wanted = (closest > farthest) & ~np.isnan(farthest) & ~np.isin(block_ids, new_ids)
    for column in np.flatnonzero(wanted):
        rows = np.flatnonzero(cosines[:, column] > farthest[column])
        offered = offers.setdefault(int(block_ids[column]), {})
        offered.update({int(new_ids[row]): float(cosines[row, column]) for row in rows})


def _kept(ids, cosines) -> list[tuple[int, float]]:
    """The pairs worth keeping, closest first: real ones, above ``min_cosine``, ``KEPT`` at most."""
    floor = min_cosine()
    pairs = [(int(i), float(c)) for i, c in zip(ids, cosines, strict=True) if i >= 0 and c >= floor]
    pairs.sort(key=lambda pair: -pair[1])
    return pairs[:KEPT]


def _row(paper_id: int, pairs: list[tuple[int, float]]) -> PaperNeighbours:
    farthest = pairs[-1][1] if len(pairs) >= KEPT else min_cosine()
    return PaperNeighbours(
        paper_id=paper_id,
        ids=[i for i, _c in pairs],
        cosines=[round(c, 5) for _i, c in pairs],
        farthest=farthest,
    )


def save(lists: dict[int, list[tuple[int, float]]]) -> int:
    """Store these papers' lists ((id, cosine) closest first), replacing what they had."""
    rows = [_row(paper_id, pairs) for paper_id, pairs in sorted(lists.items())]
    PaperNeighbours.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["paper"],
        update_fields=["ids", "cosines", "farthest"],
        batch_size=1000,
    )
    return len(rows)


def _offer(offers: dict[int, dict[int, float]]) -> int:
    """Merge the offered papers into older lists, locked in id order (two imports' tasks
    updating one list wait for each other instead of losing a neighbour)."""
    if not offers:
        return 0
    with transaction.atomic():
        rows = list(
            PaperNeighbours.objects.select_for_update().filter(paper_id__in=sorted(offers)).order_by("paper_id")
        )
        changed = []
        for row in rows:
            merged = dict(zip(row.ids, row.cosines, strict=False))
            merged.update(offers[row.paper_id])
            pairs = _kept(list(merged), list(merged.values()))
            if [i for i, _c in pairs] != row.ids:
                changed.append(_row(row.paper_id, pairs))
        PaperNeighbours.objects.bulk_update(changed, ["ids", "cosines", "farthest"], batch_size=1000)
    return len(changed)


def missing(*, after: int = 0, limit: int = BATCH) -> list[int]:
    """Up to ``limit`` embedded papers after id ``after`` that have no list yet, by id."""
    rows = PaperEmbedding.objects.filter(paper_id__gt=after, paper__neighbours__isnull=True).order_by("paper_id")
    return list(rows.values_list("paper_id", flat=True)[:limit])
