"""The full-text document of every paper, for the public site's search (``ranking.search``),
on PostgreSQL only (SQLite searches the in-memory index, and this migration does nothing there).

A stored generated column of ``papers_paper`` with a GIN index: the ``SearchVector`` of the
title (weight A) and abstract (B) in English, plus categories (C) and author names (D) as
plain words, so that ``cat:`` and ``author:`` find their candidates through the same index.
Stored, not an expression index: ranking the matches (``ts_rank_cd``) reads the vector, and
computing it again from the text for every match is too slow (bench/README.md).
PostgreSQL fills it on every insert and update; the Paper model does not know the column.
(A later change of the type of ``title``, ``abstract``, ``authors`` or ``categories`` must
drop and re-create it.)
"""

from django.db import migrations

COLUMN = "search_document"
INDEX = "paper_search_document_gin"
DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(abstract, '')), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, coalesce(categories::text, '')), 'C') || "
    "setweight(to_tsvector('simple'::regconfig, coalesce(authors::text, '')), 'D')"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE papers_paper ADD COLUMN {COLUMN} tsvector GENERATED ALWAYS AS ({DOCUMENT}) STORED"
    )
    schema_editor.execute(f"CREATE INDEX {INDEX} ON papers_paper USING gin ({COLUMN})")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE papers_paper DROP COLUMN IF EXISTS {COLUMN}")


class Migration(migrations.Migration):
    dependencies = [("ranking", "0002_paper_embedding_related_name"), ("papers", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
