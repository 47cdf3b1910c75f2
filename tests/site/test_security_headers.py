"""Security headers as an attacker meets them: a Content-Security-Policy on every answer,
HSTS preload only when asked for, X-Forwarded-Proto ignored unless a proxy is said to be
in front."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _production_settings(**extra) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    code = "from django.conf import settings as s; print(s.SECURE_HSTS_PRELOAD, s.SECURE_PROXY_SSL_HEADER)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "digestsite.settings",
            "SECRET_KEY": "x" * 50,
            "SITE_URL": "https://digest.example.org",
            "DATABASE_URL": "sqlite:////tmp/unused.sqlite3",
            "VAR_DIR": "/tmp/digest-settings-test",
            **extra,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split(None, 1)


def test_hsts_preload_and_the_proxy_header_are_opt_in():
    assert _production_settings() == ["False", "None"]
    preload, proxy = _production_settings(SECURE_HSTS_PRELOAD="1", BEHIND_HTTPS_PROXY="1")
    assert preload == "True" and proxy == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.parametrize("path", ["/", "/search?q=video", "/subscribe/", "/manage/", "/healthz", "/admin/login/"])
def test_every_page_has_a_policy_without_inline_scripts(client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe" not in policy["style-src"]
    html = response.content.decode()
    assert "<script>" not in html and "onload=" not in html and "onclick=" not in html


def test_a_client_cannot_claim_https_unless_a_proxy_is_in_front(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None
    spoofed = Client().get("/healthz", HTTP_X_FORWARDED_PROTO="https")
    assert spoofed.status_code == 301 and spoofed["Location"].startswith("https://")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert Client().get("/healthz", HTTP_X_FORWARDED_PROTO="https").status_code == 200


def test_hsts_header_says_preload_only_when_asked(settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = False
    assert Client().get("/healthz", secure=True)["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    settings.SECURE_HSTS_PRELOAD = True
    assert "preload" in Client().get("/healthz", secure=True)["Strict-Transport-Security"]


def _policy(response) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))


def test_the_digest_in_a_preview_keeps_its_styles_but_gets_no_scripts(admin_client):
    from subscriptions.models import Subscriber, Subscription, Topic

    reader = Subscriber.objects.create(email="reader@example.org", status=Subscriber.Status.ACTIVE)
    Subscription.objects.create(subscriber=reader, topic=Topic.objects.create(query="protein folding"))
    preview = admin_client.post("/admin/dashboard/preview/", {"subscriber": "reader@example.org"})
    assert preview.status_code == 200 and b"srcdoc=" in preview.content
    policy = _policy(preview)
    assert policy["style-src"] == "'self' 'unsafe-inline'" and policy["script-src"] == "'self'"
    assert "unsafe" not in _policy(admin_client.get("/admin/dashboard/"))["style-src"]
