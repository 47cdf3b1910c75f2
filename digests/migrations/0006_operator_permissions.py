"""One permission per dashboard action, and the "Digest operators" group that holds them.

The permissions are written here (not left to post_migrate) so that the group can get
them in the same migration; post_migrate then finds them and adds nothing.
"""

from django.db import migrations

PERMISSIONS = [
    ("preview_digest", "Can preview a subscriber's next digest"),
    ("send_test_digest", "Can send a test digest to any address"),
    ("dispatch_digests", "Can send the due digests now"),
    ("retry_deliveries", "Can retry failed deliveries"),
    ("import_papers", "Can import papers"),
    ("suppress_address", "Can suppress an address"),
    ("restore_address", "Can restore a suppressed address"),
    ("import_subscribers", "Can import subscribers from a CSV file"),
    ("export_subscribers", "Can export subscribers and issues' send records"),
]
GROUP = "Digest operators"


def create_group(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    issue_type, _ = ContentType.objects.get_or_create(app_label="digests", model="issue")
    permissions = [
        Permission.objects.get_or_create(content_type=issue_type, codename=codename, defaults={"name": name})[0]
        for codename, name in PERMISSIONS
    ]
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(*permissions)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()
    apps.get_model("auth", "Permission").objects.filter(
        content_type__app_label="digests", codename__in=[codename for codename, _ in PERMISSIONS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("digests", "0005_issue_paused"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="issue",
            options={"ordering": ["-created_at"], "permissions": PERMISSIONS},
        ),
        migrations.RunPython(create_group, remove_group),
    ]
