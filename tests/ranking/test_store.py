"""ranking.store: embeddings of followed topics, kept under a hash of their words."""

import numpy as np
from django.db import connection

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
