"""In CI the suite runs on PostgreSQL with real Redis; this guards against a silent fallback."""

import os

import pytest
from django.db import connection


@pytest.mark.django_db
def test_ci_runs_on_postgresql_and_redis(redis_url):
    if os.environ.get("CI") != "true":
        assert connection.vendor in ("sqlite", "postgresql")
        return
    assert connection.vendor == "postgresql"
    assert redis_url.startswith("redis://")
