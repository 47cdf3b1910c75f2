"""A GIN index on the full-text vector of papers' title and abstract (PostgreSQL only), for
the public site's search (``ranking.search``). The expression is the one
``ranking.search.search_vector`` queries with (a test checks that PostgreSQL uses it). Elsewhere (SQLite)
search uses the in-memory index and this migration does nothing."""

from django.db import migrations

INDEX_NAME = "paper_fulltext_gin"


def _index():
    from django.contrib.postgres.indexes import GinIndex
    from django.contrib.postgres.search import SearchVector

    return GinIndex(SearchVector("title", "abstract", config="english"), name=INDEX_NAME)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("papers", "Paper"), _index())


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("papers", "Paper"), _index())


class Migration(migrations.Migration):
    dependencies = [("papers", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
