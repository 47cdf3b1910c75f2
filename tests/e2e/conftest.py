"""Fixtures the browser tests share."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect


@pytest.fixture
def staff_page(page, live_server):
    """A browser page logged in to the admin through its login form, as a superuser."""
    get_user_model().objects.create_user(
        "operator", "op@example.org", "a-long-password", is_staff=True, is_superuser=True
    )
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-password")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("operator")
    return page
