"""Least privilege for operators (issue 18.3): every dashboard action needs its own
permission; the "Digest operators" group holds them all.

The refusals are checked with real HTTP requests against a live server, logged in
through the admin's login form, as a staff user with no permissions would try them.
"""

import importlib
import re

import pytest
import requests
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone

from digests.models import OPERATOR_PERMISSIONS, OPERATORS_GROUP, Delivery, Issue
from subscriptions.models import Subscriber

pytestmark = [pytest.mark.usefixtures("own_cache")]

# (path, form data): every action, each with data that would make it act.
ACTIONS = [
    ("/admin/dashboard/preview/", {"subscriber": "reader@example.org"}),
    ("/admin/dashboard/send-test/", {"subscriber": "reader@example.org", "to_address": "qa@example.org"}),
    ("/admin/dashboard/import/", {}),
    ("/admin/dashboard/import/upload/", {"fmt": "auto"}),
    ("/admin/dashboard/dispatch/", {"frequency": "", "force": "on", "confirmed": "yes"}),
    ("/admin/dashboard/issues/{issue}/retry/", {"confirmed": "yes"}),
    ("/admin/dashboard/issues/{issue}/resume/", {"confirmed": "yes"}),
    ("/admin/dashboard/suppress/", {"email": "reader@example.org", "reason": "test"}),
    ("/admin/dashboard/restore/", {"email": "reader@example.org"}),
    (
        "/admin/dashboard/subscribers/import/",
        {
            "content": "email,topics,consent\nnew@example.org,robotics,yes\n",
            "consent_confirmed": "True",
            "confirmed": "yes",
        },
    ),
]
DOWNLOADS = ["/admin/dashboard/subscribers.csv", "/admin/dashboard/issues/{issue}/record.csv"]


def _world():
    reader = Subscriber.objects.create(email="reader@example.org", status="active", confirmed_at=timezone.now())
    issue = Issue.objects.create(
        frequency="weekly", period="2026-W48", paused_at=timezone.now(), pause_reason="5 refusals in a row"
    )
    Delivery.objects.create(issue=issue, subscriber=reader, status="failed", last_error="451 try later")
    return reader, issue


def _login(base: str, username: str, password: str) -> requests.Session:
    """A browser-like session: the admin's login form, with its CSRF cookie and token."""
    session = requests.Session()
    form = session.get(f"{base}/admin/login/", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        headers={"Referer": f"{base}/admin/login/"},
        timeout=10,
    )
    assert response.url.endswith("/admin/"), "login failed"
    return session


def _post(session: requests.Session, base: str, path: str, data: dict) -> requests.Response:
    token = session.cookies["csrftoken"]
    return session.post(
        f"{base}{path}",
        data={**data, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/admin/dashboard/"},
        allow_redirects=False,
        timeout=30,
    )


@pytest.mark.django_db(transaction=True)
def test_staff_without_permissions_get_403_on_every_action_over_http(live_server):
    reader, issue = _world()
    get_user_model().objects.create_user("clerk", "clerk@example.org", "a-long-password", is_staff=True)
    session = _login(live_server.url, "clerk", "a-long-password")

    for path, data in ACTIONS:
        path = path.format(issue=issue.id)
        assert session.get(f"{live_server.url}{path}", timeout=10).status_code == 403, path
        assert _post(session, live_server.url, path, data).status_code == 403, path

    for path in DOWNLOADS:
        assert session.get(f"{live_server.url}{path.format(issue=issue.id)}", timeout=10).status_code == 403, path
    listing = session.get(f"{live_server.url}/admin/dashboard/issues/{issue.id}/?show=failed", timeout=10)
    assert listing.status_code == 403

    reader.refresh_from_db()
    assert reader.status == "active"
    assert Subscriber.objects.count() == 1
    assert Delivery.objects.get().status == "failed"
    assert Issue.objects.get().paused_at is not None
    assert mail.outbox == []
    assert not LogEntry.objects.exists()

    page = session.get(f"{live_server.url}/admin/dashboard/", timeout=10).text
    assert "may not run any action" in page
    for path, _ in ACTIONS:
        assert f'action="{path.format(issue=issue.id)}"' not in page
    assert "Retry failed" not in page and "Suppress…" not in page and "Resume " not in page


def _operators_group() -> Group:
    """The group as migration 0006 makes it (a transactional test's flush removed the migration's rows)."""
    from django.apps import apps

    importlib.import_module("digests.migrations.0006_operator_permissions").create_group(apps, None)
    return Group.objects.get(name=OPERATORS_GROUP)


@pytest.mark.django_db(transaction=True)
def test_a_digest_operator_may_act_over_http(live_server):
    reader, issue = _world()
    operator = get_user_model().objects.create_user("op", "op@example.org", "a-long-password", is_staff=True)
    operator.groups.add(_operators_group())
    session = _login(live_server.url, "op", "a-long-password")

    page = session.get(f"{live_server.url}/admin/dashboard/", timeout=10).text
    for path, _ in ACTIONS:
        if "{issue}" not in path:
            assert f'action="{path}"' in page, path
    assert f"/admin/dashboard/issues/{issue.id}/retry/" in page

    response = _post(session, live_server.url, "/admin/dashboard/suppress/", {"email": reader.email, "reason": "x"})
    assert response.status_code == 302
    reader.refresh_from_db()
    assert reader.status == "bounced" or reader.suppressed_at is not None
    assert LogEntry.objects.get().user == operator


@pytest.mark.django_db
def test_the_migration_gives_the_operators_group_every_action_permission():
    group = Group.objects.get(name=OPERATORS_GROUP)
    held = set(group.permissions.filter(content_type__app_label="digests").values_list("codename", flat=True))
    assert held == {codename for codename, _ in OPERATOR_PERMISSIONS}


@pytest.mark.django_db
@pytest.mark.parametrize("codename", [codename for codename, _ in OPERATOR_PERMISSIONS])
def test_each_permission_opens_its_own_actions_only(client, codename):
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("one", "one@example.org", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="digests", codename=codename))
    client.force_login(user)
    _world()

    page = client.get("/admin/dashboard/").content.decode()
    needs = {
        "/admin/dashboard/preview/": "preview_digest",
        "/admin/dashboard/send-test/": "send_test_digest",
        "/admin/dashboard/import/": "import_papers",
        "/admin/dashboard/import/upload/": "import_papers",
        "/admin/dashboard/dispatch/": "dispatch_digests",
        "/admin/dashboard/suppress/": "suppress_address",
        "/admin/dashboard/restore/": "restore_address",
        "/admin/dashboard/subscribers/import/": "import_subscribers",
    }
    for path, needed in needs.items():
        assert (f'action="{path}"' in page) == (needed == codename), path
        assert (client.get(path).status_code != 403) == (needed == codename), path
    exporting = codename == "export_subscribers"
    assert (client.get("/admin/dashboard/subscribers.csv").status_code == 200) == exporting
    assert ('href="/admin/dashboard/subscribers.csv"' in page) == exporting


@pytest.mark.django_db
def test_admin_bulk_actions_need_the_same_permissions(client):
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("viewer", "v@example.org", "pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_delivery", "view_issue"]))
    client.force_login(user)
    _world()
    bulk = ["retry_selected_failed", "suppress_addresses", "restore_addresses", "retry_failed_deliveries"]

    pages = (
        client.get("/admin/digests/delivery/").content.decode() + client.get("/admin/digests/issue/").content.decode()
    )
    assert not [name for name in bulk if f'value="{name}"' in pages]

    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    user = get_user_model().objects.get(pk=user.pk)  # permissions are cached per user object
    client.force_login(user)
    pages = (
        client.get("/admin/digests/delivery/").content.decode() + client.get("/admin/digests/issue/").content.decode()
    )
    assert [name for name in bulk if f'value="{name}"' in pages] == bulk
