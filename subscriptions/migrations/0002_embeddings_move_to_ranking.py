# The embedding columns moved to ranking (ranking 0001 copied them first).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('subscriptions', '0001_initial'),
        ('ranking', '0001_initial'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='topic',
            name='embedding',
        ),
    ]
