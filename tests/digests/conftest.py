import logging

import pytest


@pytest.fixture(autouse=True)
def _digests_log_everything(caplog):
    """Every log call in digests runs in tests (a bad ``extra`` key fails only when emitted)."""
    caplog.set_level(logging.DEBUG, logger="digests")
