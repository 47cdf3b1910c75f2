"""A feed server on 127.0.0.1 (port 0) that tests program route by route."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    fail_first: int = 0  # close the connection without an answer this many times
    truncate_to: int | None = None  # promise len(body) but send only this many bytes
    stream_bytes: int = 0  # send this many bytes in chunks, without a Content-Length
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    sent: int = 0  # bytes of a stream the client actually took


@dataclass
class FeedServer:
    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)

    def add(self, path: str, body: bytes = b"", **options) -> str:
        self.routes[path] = Route(body=body, **options)
        return self.base_url + path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        route = self.server.feed.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route.hits += 1
        if route.hits <= route.fail_first:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.stream_bytes:
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while route.sent < route.stream_bytes:
                    self.wfile.write(chunk)
                    route.sent += len(chunk)
            except OSError:
                pass
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(route.body)))
        if route.truncate_to is not None:
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(route.body[: route.truncate_to])
            self.close_connection = True
            return
        self.end_headers()
        self.wfile.write(route.body)


@contextmanager
def _serving():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.feed = FeedServer(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.feed
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def feed_server():
    with _serving() as feed:
        yield feed


@pytest.fixture
def other_server():
    """A second server on 127.0.0.1: another service of the same machine."""
    with _serving() as feed:
        yield feed


@pytest.fixture(autouse=True)
def _quick_fetch_retries(settings):
    """Network retries without real waiting (tests that count retries set their own)."""
    settings.PAPER_FETCH_BACKOFF = 0
    settings.PAPER_FETCH_RETRIES = 1
    settings.PAPER_FETCH_TIMEOUT = 5


@pytest.fixture
def import_file(tmp_path):
    """Write ``data`` to a file called ``name`` and run ``import_papers`` on it with
    format detection, as an operator would; returns the printed counts."""
    from io import StringIO

    from django.core.management import call_command

    def run(name: str, data: bytes | str) -> str:
        path = tmp_path / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        out = StringIO()
        call_command("import_papers", str(path), stdout=out)
        return out.getvalue().strip()

    return run
