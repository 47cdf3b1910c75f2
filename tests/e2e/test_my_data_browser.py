"""A subscriber downloads their own data from the preferences page, in a real browser."""

import json
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from subscriptions.links import preferences_url
from subscriptions.models import Subscriber, Subscription, Topic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_download_my_data_beside_delete(page, live_server, settings):
    settings.SITE_URL = live_server.url
    reader = Subscriber.objects.create(email="ada@example.org", status="active", confirmed_at=timezone.now())
    Subscription.objects.create(subscriber=reader, topic=Topic.objects.create(query="protein folding"))
    page.set_default_timeout(10_000)
    page.goto(preferences_url(reader))

    link = page.get_by_role("link", name="Download my data (JSON)")
    expect(link).to_be_visible()
    expect(page.get_by_role("button", name="Delete my data")).to_be_visible()
    with page.expect_download() as download:
        link.click()

    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert download.value.suggested_filename == "my-paper-digest-data.json"
    assert data["subscriber"]["email"] == "ada@example.org"
    assert [topic["query"] for topic in data["topics"]] == ["protein folding"]
    serious = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []
    assert Subscriber.objects.get().status == "active"  # a download changes nothing
