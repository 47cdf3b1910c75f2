"""Matching and ranking papers: plain inputs in (topic texts, authors, liked and
disliked paper ids), ranked papers out. Its public functions are in ``ranking.api``.

It reads papers and keeps its own embeddings (``ranking.store``); it knows nothing of
subscribers or digests: the layers above pass what it needs as plain data.
"""
