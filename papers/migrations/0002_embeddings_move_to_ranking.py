# The embedding columns moved to ranking (ranking 0001 copied them first).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('papers', '0001_initial'),
        ('ranking', '0001_initial'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='paper',
            name='embedding',
        ),
        migrations.RemoveField(
            model_name='paper',
            name='embedding_model',
        ),
    ]
