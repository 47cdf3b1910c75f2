"""ranking.store: embeddings of followed topics, kept under a hash of their words."""

import numpy as np
from django.db import connection, transaction

from ranking import semantic, store
from ranking.models import QueryEmbedding


def test_topic_embeddings_are_written_in_key_order_and_keep_no_words(db):
    """Storing new topics is one INSERT: two workers writing the same new topics in
    different orders could deadlock each other (seen in CI). In key order one waits."""
    texts = [f"topic number {n}" for n in range(6)]
    vector = np.full(semantic.DIMENSIONS, 0.05, dtype=np.float32)
    written = []

    def spy(execute, sql, params, many, context):
        if "ranking_queryembedding" in sql and sql.lstrip().upper().startswith("INSERT"):
            written.extend(p for p in params if isinstance(p, str))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        store.store_query_vectors({text: vector for text in reversed(texts)})
    assert written == sorted(store.query_key(t) for t in texts)
    assert all(np.allclose(v, vector) for v in store.stored_query_vectors(texts).values())
    assert not QueryEmbedding.objects.filter(key__contains="topic").exists()  # a hash, never the words
    store.forget_queries(texts[:2])
    assert set(store.stored_query_vectors(texts)) == set(texts[2:])


def _statements(action) -> list[str]:
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append(sql.split("(")[0].strip().upper()[:60])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        action()
    return seen


def test_new_topic_embeddings_commit_without_waiting_for_the_disk_outside_a_transaction(transactional_db):
    """An embedding is computed again if a crash loses it: outside any transaction it is
    stored with synchronous_commit off, in a transaction of its own (so nothing else's
    commit changes); inside a caller's transaction that transaction's setting stands."""
    vector = np.full(semantic.DIMENSIONS, 0.05, dtype=np.float32)
    seen = _statements(lambda: store.store_query_vectors({"alone": vector}))
    if connection.vendor == "postgresql":
        assert seen[0] == "SET LOCAL SYNCHRONOUS_COMMIT TO OFF" and seen[1].startswith("INSERT INTO")
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"  # only that transaction's
    else:  # SQLite has no such setting (its transaction opens with BEGIN IMMEDIATE)
        assert [s for s in seen if not s.startswith("BEGIN")][0].startswith("INSERT")  # OR IGNORE INTO
    with transaction.atomic():
        seen = _statements(lambda: store.store_query_vectors({"inside": vector}))
        assert not any("SYNCHRONOUS_COMMIT" in s for s in seen) and seen[0].startswith("INSERT")
    assert set(store.stored_query_vectors(["alone", "inside"])) == {"alone", "inside"}
