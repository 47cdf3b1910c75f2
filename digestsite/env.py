"""Read settings from environment variables and fail loudly on bad values.

django-environ parses URLs (database, cache, mail); these helpers add the strict
checks it lacks (it reads ``DEBUG=maybe`` as False), and every error names the
variable so a bad deployment stops at start with a message a person can act on.
"""

import os
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None else None


def env_str(name: str, default: str | None = None) -> str:
    value = _raw(name)
    if value:
        return value
    if default is None:
        raise ImproperlyConfigured(f"{name} must be set")
    return default


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    value = _raw(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}")
    return number


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name)
    if not value:
        return default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A rate such as ``10/h`` (count per s, m, h or d), as django-ratelimit reads it."""
    value = _raw(name) or default
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in ("s", "m", "h", "d"):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 10/h (count per s, m, h or d)")
    return value


def env_url(name: str, default: str | None = None, *, schemes: tuple[str, ...]) -> str | None:
    """A URL whose scheme is one of ``schemes``; None when unset and no default."""
    value = _raw(name) or default
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ImproperlyConfigured(f"{name}={value!r} is not a URL with scheme {'/'.join(schemes)}")
    return value


def env_database(name: str, default_sqlite_path) -> dict:
    value = env_url(name, schemes=("postgres", "postgresql", "pgsql", "sqlite"))
    if value is None:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite_path)}
    try:
        return _env.db_url_config(value)
    except Exception as exc:  # django-environ raises several kinds
        raise ImproperlyConfigured(f"{name}={value!r} cannot be parsed: {exc}") from None


def env_email(name: str) -> dict | None:
    """Email settings from an SMTP URL: smtp://user:pass@host:port, smtp+tls://, smtps:// (SSL).

    Returns None when unset (the caller then writes mail to the outbox).
    """
    value = env_url(name, schemes=("smtp", "smtp+tls", "smtps", "smtp+ssl"))
    if value is None:
        return None
    parts = urlsplit(value)
    if not parts.hostname:
        raise ImproperlyConfigured(f"{name}={value!r} has no host")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} has a bad port") from None
    use_ssl = parts.scheme in ("smtps", "smtp+ssl")
    from urllib.parse import unquote

    return {
        "EMAIL_BACKEND": "emails.smtp.SmtpBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port or (465 if use_ssl else 587 if parts.scheme == "smtp+tls" else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": parts.scheme == "smtp+tls",
        "EMAIL_USE_SSL": use_ssl,
    }


def env_cache(name: str) -> dict:
    value = env_url(name, schemes=("redis", "rediss", "locmem", "dummy"))
    if value is None:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if value.startswith(("redis://", "rediss://")):
        return {"BACKEND": "digestsite.cache.RedisCache", "LOCATION": value}
    try:
        return _env.cache_url_config(value)
    except Exception as exc:
        raise ImproperlyConfigured(f"{name}={value!r} cannot be parsed: {exc}") from None
