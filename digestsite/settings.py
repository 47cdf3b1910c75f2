"""Settings, all read from environment variables (see README "Environment variables").

Unset variables give the embedded default: SQLite under ``var/``, Celery tasks run
in-process, mail written as ``.eml`` files under ``var/outbox/``.
"""

import ipaddress
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from digestsite.env import (
    env_bool,
    env_cache,
    env_database,
    env_email,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
    env_url,
)


def _mail_domain(hostname: str | None) -> str:
    """The site's host name as a mail domain; "localhost" for an IP address or none."""
    try:
        ipaddress.ip_address(hostname or "")
    except ValueError:
        return hostname or "localhost"
    return "localhost"


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded database and outbox live here

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else None)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set to a secret value when DEBUG is off")

# Earlier keys, still accepted when reading signed links (and sessions) while a new
# SECRET_KEY takes over; drop them to make every old link stop working.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
_site = urlsplit(SITE_URL)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", _site.hostname] if DEBUG else [_site.hostname])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [f"{_site.scheme}://{_site.netloc}"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "anymail",
    "csp",
    "papers",
    "ranking",
    "subscriptions",
    "digests",
    "pages",
]

MIDDLEWARE = [
    "digestsite.uploads.RequestSizeLimitMiddleware",  # before anything reads the body
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Kept public pages (the same for everyone) are served from here, before the session,
    # CSRF and authentication work below: pages.cache.
    "pages.middleware.PublicPageCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "digestsite.urls"
WSGI_APPLICATION = "digestsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", VAR_DIR / "db.sqlite3")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default serves a web process and in-process tasks (and, in tests,
    # worker processes) at once: wait for locks instead of failing, take the write lock
    # when a transaction starts (no deadlocked lock upgrades), and let readers go on
    # while one writer writes (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60, minimum=0)
# A pool of PostgreSQL connections per process (DATABASE_POOL_SIZE at most; 0: none).
# digestsite.web sets it for web processes: their many threads may not each keep a
# connection (PostgreSQL allows 100), and a new connection per request costs a backend
# fork, authentication and cold catalog caches, more than the public pages' queries
# (bench/README.md, site_load). Django's pool needs CONN_MAX_AGE=0: a connection goes
# back to the pool after each request.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0, minimum=0)
if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "pool": {"min_size": 1, "max_size": DATABASE_POOL_SIZE, "timeout": 10},
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # a kept connection is checked before reuse
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env_cache("CACHE_URL")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE={TIME_ZONE!r} is not a known time zone") from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Security: production defaults; DEBUG relaxes what a plain-HTTP dev server needs.
# X-Forwarded-Proto is trusted only when a TLS-terminating proxy is said to be in front
# (and strips the header from clients); otherwise any client could claim HTTPS.
BEHIND_HTTPS_PROXY = env_bool("BEHIND_HTTPS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_HTTPS_PROXY else None
_https = _site.scheme == "https"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _https and not DEBUG)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG or not _https else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Preloading is hard to undo (browsers ship the list): only when asked for.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]  # "preload is off": it is, on purpose
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every response: scripts, styles, fonts and images
# from our own origin only, no inline scripts. Style attributes are allowed (the dashboard's
# progress bars, KaTeX's rendered math); ``<style>`` elements are not, except on the web
# version of a digest, which is the email's HTML (digests.views).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Mail: an SMTP URL in EMAIL_URL, otherwise one .eml file per message in the outbox.
OUTBOX_DIR = Path(env_str("OUTBOX_DIR", str(VAR_DIR / "outbox")))
_email = env_email("EMAIL_URL")
if _email:
    globals().update(_email)
else:
    EMAIL_BACKEND = "emails.outbox.OutboxBackend"
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
# How long the answer to a message's final dot is waited for (RFC 5321 4.5.3.2.6: 10
# minutes): the server may be queueing it; a client that gives up sooner sends it twice.
EMAIL_DATA_END_TIMEOUT = env_int("EMAIL_DATA_END_TIMEOUT", 600, minimum=1)
# The domain of our Message-IDs, List-Ids and default sender: the site's host, unless that
# is an IP address (no mail domain: "digest@127.0.0.1" is refused at MAIL FROM).
MAIL_DOMAIN = env_str("MAIL_DOMAIN", _mail_domain(_site.hostname))
# Checked at startup (emails.checks): a sender every mail server accepts.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"Paper Digest <digest@{MAIL_DOMAIN}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The name our SMTP client gives in EHLO (Django's DNS_NAME: the machine's name otherwise).
EMAIL_EHLO_NAME = env_str("EMAIL_EHLO_NAME", MAIL_DOMAIN)
# STARTTLS/SSL to a server whose certificate a private CA signed: that CA's PEM file,
# trusted for mail only, besides the system's trust store.
EMAIL_SSL_CAFILE = env_str("EMAIL_SSL_CAFILE", "")
if EMAIL_SSL_CAFILE and not Path(EMAIL_SSL_CAFILE).is_file():
    raise ImproperlyConfigured(f"EMAIL_SSL_CAFILE={EMAIL_SSL_CAFILE!r} is not a readable file")
SENDER_NAME = env_str("SENDER_NAME", "Paper Digest")
SENDER_POSTAL_ADDRESS = env_str("SENDER_POSTAL_ADDRESS", "Paper Digest, 1 Example Street, 00000 Example City")
UNSUBSCRIBE_MAILTO = env_str("UNSUBSCRIBE_MAILTO", "")
DKIM_SELECTOR = env_str("DKIM_SELECTOR", "")
# The From domain by default, so that the signature aligns with it for DMARC.
DKIM_DOMAIN = env_str("DKIM_DOMAIN", parseaddr(DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or MAIL_DOMAIN)
DKIM_PRIVATE_KEY_FILE = env_str("DKIM_PRIVATE_KEY_FILE", "")
if bool(DKIM_SELECTOR) != bool(DKIM_PRIVATE_KEY_FILE):
    raise ImproperlyConfigured("DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE must be set together")
if DKIM_PRIVATE_KEY_FILE and not Path(DKIM_PRIVATE_KEY_FILE).is_file():
    raise ImproperlyConfigured(f"DKIM_PRIVATE_KEY_FILE={DKIM_PRIVATE_KEY_FILE!r} is not a readable file")
ANYMAIL = {"WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET", "")}

# Celery: a broker URL means real workers; none means tasks run in-process.
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", schemes=("redis", "rediss"))
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
if CELERY_BROKER_URL is None:
    CELERY_BROKER_URL = "memory://localhost/"  # with a host: kombu warns of a bare memory:// on every import
# The broker redelivers an unacknowledged task after this many seconds; no ETA or
# countdown may be longer, or the task would run twice (see digests.tasks).
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection around every task unless this is
# set: each batch then paid for a new PostgreSQL backend (fork, authentication, cold
# catalog caches). With it a worker keeps its connection as CONN_MAX_AGE says, and
# digestsite.celery checks it between tasks as Django does between requests.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, minimum=0)
# Threads numpy's BLAS and the sentence model may use inside each worker pool process. The pool's
# processes (one per core) are the parallelism; more compute threads in each only spin
# against the other processes for the same cores (digestsite.celery).
WORKER_COMPUTE_THREADS = env_int("WORKER_COMPUTE_THREADS", 1, minimum=1)
# A pool process loads the sentence model when it starts (digestsite.celery); on a busy
# machine that takes longer than Celery's default 4 s before the process is declared dead.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 120.0
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-digests": {"task": "digests.tasks.dispatch_due", "schedule": crontab(minute=0)},
    "fetch-paper-sources": {"task": "papers.tasks.fetch_sources", "schedule": crontab(minute=30)},
    "retry-failed-confirmations": {
        "task": "subscriptions.tasks.retry_failed_confirmations",
        "schedule": crontab(minute=15),
    },
}

# Product settings.
DIGEST_MAX_PAPERS = env_int("DIGEST_MAX_PAPERS", 10, minimum=1, maximum=20)
DIGEST_BATCH_SIZE = env_int("DIGEST_BATCH_SIZE", 100, minimum=1, maximum=1000)
# SMTP connections each batch sends over side by side: that many messages wait at the
# server for their final dot and are claimed together, one transaction for the group.
DIGEST_SMTP_CONNECTIONS = env_int("DIGEST_SMTP_CONNECTIONS", 4, minimum=1, maximum=16)
SEND_RATE_PER_SECOND = env_float("SEND_RATE_PER_SECOND", 50.0, minimum=0.1)
# A SENDING claim is trusted this long; at least the task's hard time limit, so a live
# worker's claim never expires under it (a SIGKILLed worker's claim is retaken after it).
DIGEST_SENDING_LEASE_SECONDS = env_int("DIGEST_SENDING_LEASE_SECONDS", CELERY_TASK_TIME_LIMIT, minimum=1)
# A QUEUED delivery untouched this long has lost its task (e.g. Redis restarted): re-enqueue.
DIGEST_RESCUE_AFTER_SECONDS = env_int("DIGEST_RESCUE_AFTER_SECONDS", 30 * 60, minimum=1)
# The circuit breaker (digests.breaker): an issue pauses when this many sends in a row,
# or this share of its attempts (once it has DIGEST_BREAKER_MIN_ATTEMPTS), fail
# permanently with the same reply; an operator resumes it from the dashboard.
DIGEST_BREAKER_CONSECUTIVE = env_int("DIGEST_BREAKER_CONSECUTIVE", 20, minimum=1)
DIGEST_BREAKER_SHARE = env_float("DIGEST_BREAKER_SHARE", 0.05, minimum=0.0001, maximum=1.0)
DIGEST_BREAKER_MIN_ATTEMPTS = env_int("DIGEST_BREAKER_MIN_ATTEMPTS", 100, minimum=1)
DIGEST_RETRY_BASE_SECONDS = env_float("DIGEST_RETRY_BASE_SECONDS", 30.0, minimum=0.01)
DIGEST_MAX_RETRY_DELAY_SECONDS = env_float("DIGEST_MAX_RETRY_DELAY_SECONDS", 600.0, minimum=1)
# Signup abuse limits (per client IP and per address), kept in the cache: point CACHE_URL
# at Redis so every web process shares them. Behind a reverse proxy, name the header
# that carries the client address (e.g. HTTP_X_REAL_IP) in RATELIMIT_IP_META_KEY.
SIGNUP_RATE_PER_IP = env_rate("SIGNUP_RATE_PER_IP", "10/h")
SIGNUP_RATE_PER_ADDRESS = env_rate("SIGNUP_RATE_PER_ADDRESS", "3/h")
PREVIEW_RATE_PER_IP = env_rate("PREVIEW_RATE_PER_IP", "120/m")
RATELIMIT_IP_META_KEY = env_str("RATELIMIT_IP_META_KEY", "") or None
# Signup preview: answers cached per topic set (in CACHE_URL's cache, shared by every web
# process when it is Redis); one ranking at a time per process, the others wait up to
# PREVIEW_WAIT_SECONDS, then get 503; this week's trending papers (the same on every page
# view) cached too.
PREVIEW_CACHE_SECONDS = env_int("PREVIEW_CACHE_SECONDS", 300, minimum=0)
PREVIEW_WAIT_SECONDS = env_float("PREVIEW_WAIT_SECONDS", 5.0, minimum=0.01)
TRENDING_CACHE_SECONDS = env_int("TRENDING_CACHE_SECONDS", 60, minimum=0)
# The public site (pages): search and API abuse limits per client IP; searches' answers,
# listing pages and papers' "similar papers" kept in the cache (shared by web processes with Redis).
SEARCH_RATE_PER_IP = env_rate("SEARCH_RATE_PER_IP", "60/m")
API_RATE_PER_IP = env_rate("API_RATE_PER_IP", "120/m")
SEARCH_CACHE_SECONDS = env_int("SEARCH_CACHE_SECONDS", 300, minimum=0)
# Public pages are kept until the papers change (pages.cache), at most PAGE_KEEP_SECONDS;
# browsers and proxies may keep them PAGE_CACHE_SECONDS (0: no page is kept anywhere).
PAGE_CACHE_SECONDS = env_int("PAGE_CACHE_SECONDS", 60, minimum=0)
PAGE_KEEP_SECONDS = env_int("PAGE_KEEP_SECONDS", 3600, minimum=1)
# Each web process also keeps pages in its own memory (0: none), and trusts the pages version
# it read for PAGE_VERSION_CHECK_SECONDS: another process's import shows that much later.
PAGE_LOCAL_MEGABYTES = env_int("PAGE_LOCAL_MEGABYTES", 32, minimum=0)
PAGE_VERSION_CHECK_SECONDS = env_float("PAGE_VERSION_CHECK_SECONDS", 1.0, minimum=0)
SIMILAR_CACHE_SECONDS = env_int("SIMILAR_CACHE_SECONDS", 3600, minimum=0)
# Comma-separated URLs or files fetched by papers.tasks.fetch_sources; empty by default.
PAPER_SOURCES = env_list("PAPER_SOURCES", [])
PAPER_FETCH_TIMEOUT = env_int("PAPER_FETCH_TIMEOUT", 30, minimum=1)
PAPER_FETCH_RETRIES = env_int("PAPER_FETCH_RETRIES", 2, minimum=0, maximum=10)
PAPER_FETCH_BACKOFF = env_float("PAPER_FETCH_BACKOFF", 1.0, minimum=0)
PAPER_MAX_BYTES = env_int("PAPER_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
# Redis for the send rate limit shared by all workers; the broker's by default.
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss")) or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else None
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": env_str("LOG_FORMAT", "json")},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
if LOGGING["handlers"]["console"]["formatter"] not in LOGGING["formatters"]:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain")
