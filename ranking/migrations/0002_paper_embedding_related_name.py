import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ranking", "0001_initial"),
        ("papers", "0002_embeddings_move_to_ranking"),
    ]

    operations = [
        migrations.AlterField(
            model_name="paperembedding",
            name="paper",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="embedding",
                serialize=False,
                to="papers.paper",
            ),
        ),
    ]
