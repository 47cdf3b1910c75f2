"""Reading a source's bytes: a file, or an http(s) URL with a deadline, a size cap,
retries of network failures, and a redirect policy.

Redirects: at most ``MAX_REDIRECTS``, to http(s) only, and never to a loopback, private,
link-local or otherwise non-public address, except back to the configured source's own
address and port (an operator may configure a source on an internal host; a public one
must not lead us to the machine's own services). The address is checked when a
redirect's host is resolved and again on the connection actually made, so a name that
resolves differently the second time gains nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

log = logging.getLogger("papers.services")

USER_AGENT = "paper-digest/1.0 (+papers importer)"
MAX_REDIRECTS = 5


class ImportFailed(Exception):
    """An import that wrote nothing; ``str()`` is one line naming the source and the problem."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{source}: {self.reason}")


class FetchFailed(ImportFailed):
    """A network failure (connection, timeout, truncated body, 5xx): worth retrying later."""


@dataclass
class Body:
    data: bytes
    content_type: str = ""
    charset: str | None = None
    url: str | None = None
    name: str = ""


def too_big(size: int | str, limit: int) -> str:
    return f"is larger than the {limit}-byte limit (PAPER_MAX_BYTES): {size} bytes"


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def read_file(path: str, *, max_bytes: int) -> Body:
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if file.is_dir():
            raise ImportFailed(path, "is a directory, not a file")
        if size > max_bytes:
            raise ImportFailed(path, too_big(size, max_bytes))
        with file.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImportFailed(path, "no such file") from None
    except PermissionError:
        raise ImportFailed(path, "permission denied") from None
    except OSError as exc:
        raise ImportFailed(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ImportFailed(path, too_big(f"more than {max_bytes}", max_bytes))
    return Body(data=data, name=file.name)


def fetch_url(
    url: str, *, timeout: float, max_bytes: int, retries: int = 2, backoff: float = 1.0, deadline: float | None = None
) -> Body:
    """GET ``url`` with a whole-download deadline and a size cap, retrying network
    failures (with exponential backoff); other failures raise at once. No retry starts
    that could run past ``deadline`` (a ``time.monotonic()`` value)."""
    for attempt in range(retries + 1):
        try:
            return _download(url, timeout=timeout, max_bytes=max_bytes)
        except FetchFailed as exc:
            delay = backoff * 2**attempt
            if attempt == retries or (deadline is not None and time.monotonic() + delay + 2 * timeout > deadline):
                raise
            log.warning(
                "paper source fetch failed, retrying in %s s: %s", delay, exc, extra={"source": url, "retry_in": delay}
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


# --- where a fetch may go -------------------------------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _endpoints(url: str) -> set[tuple[str, int]]:
    """The (address, port) pairs ``url``'s host resolves to; FetchFailed when it does not."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(url, f"cannot resolve {parts.hostname!r}: {exc}") from None
    return {(info[4][0], port) for info in found}


class _Route:
    """The configured source's own endpoints, and the check of each redirect's target."""

    def __init__(self, url: str):
        self.source = url
        self.own: set[tuple[str, int]] | None = None  # resolved lazily: files never need it

    def _own(self) -> set[tuple[str, int]]:
        if self.own is None:
            self.own = _endpoints(self.source)
        return self.own

    def allowed(self, endpoint: tuple[str, int]) -> bool:
        return _public(endpoint[0]) or endpoint in self._own()

    def check_redirect(self, target: str) -> None:
        scheme = urlsplit(target).scheme
        if scheme not in ("http", "https"):
            raise ImportFailed(self.source, f"redirected to a {scheme or 'relative'} URL, not http(s): {target[:200]}")
        blocked = sorted(address for address, port in _endpoints(target) if not self.allowed((address, port)))
        if blocked:
            raise ImportFailed(
                self.source, f"redirected to a non-public address ({', '.join(blocked)}), refused: {target[:200]}"
            )

    def check_peer(self, response: requests.Response, url: str) -> None:
        """The address actually connected to, for a redirect's target (no proxy)."""
        if requests.utils.get_environ_proxies(url):
            return
        try:
            peer = response.raw.connection.sock.getpeername()
        except (AttributeError, OSError):
            return
        parts = urlsplit(url)
        if not self.allowed((peer[0], parts.port or (443 if parts.scheme == "https" else 80))):
            raise ImportFailed(self.source, f"redirected to a non-public address ({peer[0]}), refused: {url[:200]}")


# --- one download ---------------------------------------------------------------------


def _download(url: str, *, timeout: float, max_bytes: int) -> Body:
    started = time.monotonic()
    route = _Route(url)
    current = url
    try:
        with requests.Session() as session:
            for hop in range(MAX_REDIRECTS + 1):
                if hop:
                    route.check_redirect(current)
                response = session.get(
                    current, stream=True, timeout=timeout, allow_redirects=False, headers={"User-Agent": USER_AGENT}
                )
                with response:
                    if hop:
                        route.check_peer(response, current)
                    if response.is_redirect:
                        current = urljoin(current, response.headers["Location"])
                        continue
                    return _read(response, url, started=started, timeout=timeout, max_bytes=max_bytes)
    except requests.exceptions.ChunkedEncodingError as exc:
        raise FetchFailed(url, f"the download was cut short (truncated): {_short(exc)}") from None
    except requests.exceptions.ContentDecodingError as exc:
        raise FetchFailed(url, f"the body could not be decompressed: {_short(exc)}") from None
    except requests.Timeout:
        raise FetchFailed(url, f"timed out after {timeout} s (PAPER_FETCH_TIMEOUT)") from None
    except requests.ConnectionError as exc:
        raise FetchFailed(url, f"cannot connect: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise ImportFailed(url, f"cannot fetch: {_short(exc)}") from None
    raise ImportFailed(url, f"more than {MAX_REDIRECTS} redirects (last to {current[:200]})")


def _read(response: requests.Response, url: str, *, started: float, timeout: float, max_bytes: int) -> Body:
    status = response.status_code
    if status >= 500 or status == 429:
        raise FetchFailed(url, f"the server answered HTTP {status} {response.reason}")
    if status >= 400:
        raise ImportFailed(url, f"the server answered HTTP {status} {response.reason}")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ImportFailed(url, too_big(declared, max_bytes))
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise ImportFailed(url, too_big(f"more than {max_bytes}", max_bytes))
        if time.monotonic() - started > timeout:
            raise FetchFailed(url, f"the download took longer than {timeout} s (PAPER_FETCH_TIMEOUT)")
        chunks.append(chunk)
    content_type = response.headers.get("Content-Type", "")
    charset = None
    if "charset=" in content_type.lower():
        charset = content_type.lower().split("charset=", 1)[1].split(";")[0].strip().strip("\"'")
    return Body(data=b"".join(chunks), content_type=content_type, charset=charset, url=response.url, name=url)


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300]
