"""``gunicorn.conf.py``'s hooks, called as gunicorn calls them."""

import gc
import os
import runpy
from pathlib import Path
from unittest import mock

from ranking import semantic

CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def test_the_master_freezes_what_it_loaded_before_the_first_fork(monkeypatch):
    """Objects the master loaded are out of the workers' garbage collections (a full one
    walked all of Django, the app and the model, with every thread of the worker stopped)."""
    with mock.patch.dict(os.environ):  # the config sets its defaults in the environment
        config = runpy.run_path(str(CONFIG))
    loaded = []
    monkeypatch.setattr(semantic, "load_before_fork", loaded.append)
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        config["when_ready"](server=None)
        assert loaded == [1]  # the model first, one compute thread, so it is frozen too
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
