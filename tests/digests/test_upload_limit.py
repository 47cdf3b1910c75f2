"""A too-large upload is refused from its headers, before its body is read (real HTTP)."""

import socket
import time
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db(transaction=True)

UPLOAD = "/admin/dashboard/import/upload/"


def _post_headers_only(live_server, *, length: int, cookie: str = "") -> tuple[str, float]:
    """Send the headers of a ``length``-byte multipart POST and 1 KB of its body, then
    wait for an answer: a server that reads the whole body never answers."""
    parts = urlsplit(live_server.url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        head = (
            f"POST {UPLOAD} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {length}\r\n"
            f"Cookie: {cookie}\r\n\r\n"
        )
        conn.sendall(head.encode() + b"--xyz\r\n" + b"x" * 1024)
        answer = b""
        while b"Nothing was read" not in answer and (chunk := conn.recv(4096)):
            answer += chunk
    return answer.decode(errors="replace"), time.monotonic() - started


def test_an_upload_over_the_limit_is_refused_before_its_body_is_read(live_server, settings, client):
    settings.PAPER_MAX_BYTES = 1024 * 1024
    User.objects.create_superuser("ops", "ops@example.org", "pw")
    client.login(username="ops", password="pw")
    cookie = "; ".join(f"{k}={v.value}" for k, v in client.cookies.items())
    answer, seconds = _post_headers_only(live_server, length=500 * 1024 * 1024, cookie=cookie)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "at most 2.0 MB is accepted" in answer and "Nothing was read" in answer
    assert seconds < 5


def test_an_upload_within_the_limit_reaches_the_form(client, settings):
    settings.PAPER_MAX_BYTES = 1024 * 1024
    User.objects.create_superuser("ops", "ops@example.org", "pw")
    client.login(username="ops", password="pw")
    from django.core.files.uploadedfile import SimpleUploadedFile

    small = SimpleUploadedFile("papers.json", b"not json", content_type="application/json")
    response = client.post(UPLOAD, {"file": small, "fmt": "auto"})
    assert response.status_code != 413
