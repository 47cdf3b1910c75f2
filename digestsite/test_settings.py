"""Settings for the test suite: the real settings, read from the environment, with
test-friendly defaults for whatever the environment leaves unset.

``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``CACHE_URL`` pass through, so CI runs the
same suite on PostgreSQL and Redis. Pipeline tests start their own workers against
``TEST_REDIS_URL``; the rest run Celery tasks eagerly because they test logic.
"""

import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789")
os.environ.setdefault("SITE_URL", "http://testserver")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("LOG_FORMAT", "plain")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="digest-test-var-"))
# Tests that need eager tasks get them; the pipeline tests build their own app config.
_broker = os.environ.pop("CELERY_BROKER_URL", None)
os.environ.pop("EMAIL_URL", None)

from digestsite.settings import *  # noqa: E402,F403

# Redis for tests that need it (pipeline, rate limit): CI sets TEST_REDIS_URL; the
# broker URL given to the suite counts too.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or _broker or "redis://127.0.0.1:6379/15"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file, not memory, so the worker processes of the pipeline tests see the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
