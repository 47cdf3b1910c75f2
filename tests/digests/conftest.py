import datetime as dt
import logging

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from devtools.smtp_sink import SmtpSink
from tests.digests.helpers import make_papers


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


@pytest.fixture
def papers():
    """Seen yesterday by the real clock: deliveries rank what is new at the time they go
    out (the dispatch tests pin their own ``now``, which only decides who is due)."""
    return make_papers(first_seen_at=timezone.now() - dt.timedelta(days=1))


@pytest.fixture
def enqueued(monkeypatch):
    """Record the batches dispatch enqueues instead of running them."""
    from digests import tasks

    batches = []
    monkeypatch.setattr(tasks.deliver_batch, "delay", lambda ids: batches.append(list(ids)))
    return batches


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()
