import logging

import pytest
from django.contrib.auth import get_user_model


@pytest.fixture(autouse=True)
def _digests_log_everything(caplog):
    """Every log call in digests runs in tests (a bad ``extra`` key fails only when emitted)."""
    caplog.set_level(logging.DEBUG, logger="digests")


@pytest.fixture
def staff(client):
    """A logged-in operator (staff and superuser)."""
    user = get_user_model().objects.create_user("operator", "op@example.org", "pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user
