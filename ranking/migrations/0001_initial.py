"""Embeddings move into ranking's own tables (they were columns of papers' Paper and
subscriptions' Topic). Stored vectors are copied, so nothing is encoded again; a
topic's is keyed by a hash of the model and its words, as ``ranking.store`` keys it."""

import hashlib

import django.db.models.deletion
from django.db import migrations, models

MODEL_NAME = "all-MiniLM-L6-v2"


def copy_embeddings(apps, schema_editor):
    Paper = apps.get_model("papers", "Paper")
    Topic = apps.get_model("subscriptions", "Topic")
    PaperEmbedding = apps.get_model("ranking", "PaperEmbedding")
    QueryEmbedding = apps.get_model("ranking", "QueryEmbedding")
    papers = Paper.objects.exclude(embedding=None).exclude(embedding_model="")
    batch = []
    for paper_id, vector, model in papers.values_list("id", "embedding", "embedding_model").iterator(chunk_size=2000):
        batch.append(PaperEmbedding(paper_id=paper_id, vector=bytes(vector), model=model))
        if len(batch) >= 2000:
            PaperEmbedding.objects.bulk_create(batch)
            batch = []
    PaperEmbedding.objects.bulk_create(batch)
    queries = {}
    for query, vector in Topic.objects.exclude(embedding=None).values_list("query", "embedding").iterator():
        key = hashlib.blake2b(f"{MODEL_NAME}\n{query}".encode(), digest_size=16).hexdigest()
        queries[key] = QueryEmbedding(key=key, vector=bytes(vector))
    QueryEmbedding.objects.bulk_create(queries.values(), batch_size=2000)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("papers", "0001_initial"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="PaperEmbedding",
            fields=[
                (
                    "paper",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="papers.paper",
                    ),
                ),
                ("vector", models.BinaryField()),
                ("model", models.CharField(max_length=80)),
            ],
        ),
        migrations.CreateModel(
            name="QueryEmbedding",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=64, unique=True)),
                ("vector", models.BinaryField()),
            ],
        ),
        migrations.RunPython(copy_embeddings, migrations.RunPython.noop),
    ]
