"""Settings come from the environment and a bad value stops the start, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from digestsite import env

ROOT = Path(__file__).resolve().parents[2]


def _start(extra_env: dict) -> subprocess.CompletedProcess:
    """Run `manage.py check` in a clean environment plus ``extra_env``."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "digestsite.settings", **extra_env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://x@localhost/db"),
        ("CELERY_BROKER_URL", "amqp://guest@localhost//"),
        ("EMAIL_URL", "http://mail.example"),
        ("SITE_URL", "not a url"),
        ("DIGEST_MAX_PAPERS", "50"),
        ("SEND_RATE_PER_SECOND", "fast"),
        ("TIME_ZONE", "Mars/Olympus"),
        ("SIGNUP_RATE_PER_IP", "ten per hour"),
    ],
)
def test_bad_value_stops_start_naming_the_variable(name, value, tmp_path):
    result = _start({"DEBUG": "1", "VAR_DIR": str(tmp_path), name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = _start({"VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_embedded_default_starts_with_debug(tmp_path):
    result = _start({"DEBUG": "1", "VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "digestsite.settings",
            "VAR_DIR": str(tmp_path),
            "SECRET_KEY": "x" * 20 + "production-secret-with-enough-entropy-9f8e7d6c5b4a",
            "SITE_URL": "https://digest.example.org",
            "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_email_url_parses_smtp_with_tls(monkeypatch):
    monkeypatch.setenv("EMAIL_URL", "smtp+tls://user%40x:p%3Ass@mail.example.org:2525")
    config = env.env_email("EMAIL_URL")
    assert config["EMAIL_HOST"] == "mail.example.org"
    assert config["EMAIL_PORT"] == 2525
    assert config["EMAIL_HOST_USER"] == "user@x"
    assert config["EMAIL_HOST_PASSWORD"] == "p:ss"
    assert config["EMAIL_USE_TLS"] is True
    assert config["EMAIL_USE_SSL"] is False


def test_email_url_smtps_defaults_to_port_465(monkeypatch):
    monkeypatch.setenv("EMAIL_URL", "smtps://mail.example.org")
    assert env.env_email("EMAIL_URL")["EMAIL_PORT"] == 465
    assert env.env_email("EMAIL_URL")["EMAIL_USE_SSL"] is True


def test_unset_email_url_means_outbox(monkeypatch):
    monkeypatch.delenv("EMAIL_URL", raising=False)
    assert env.env_email("EMAIL_URL") is None


def test_database_url_postgres(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    config = env.env_database("DATABASE_URL", "/tmp/x.sqlite3")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "test"


def test_database_url_unset_is_sqlite_under_var(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = env.env_database("DATABASE_URL", tmp_path / "db.sqlite3")
    assert config == {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_env_bool_true(monkeypatch, value):
    monkeypatch.setenv("X_FLAG", value)
    assert env.env_bool("X_FLAG", False) is True


def test_env_int_range_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="X_NUM"):
        env.env_int("X_NUM", 5, minimum=1)
