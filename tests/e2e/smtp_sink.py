"""An SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, for pipeline tests.

It can answer chosen recipients with scripted replies (``451 ...`` then accept, or
``550 ...``) and can hold every DATA command after the n-th message, which lets a
test kill a worker while it is provably waiting on the server (before acceptance).
"""

from __future__ import annotations

import asyncio
import email
import threading
import time
from collections import Counter, defaultdict
from email import policy

from aiosmtpd.controller import Controller


class _AnyPortController(Controller):
    """Bind port 0 and learn the port the system chose before the readiness check."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    def __init__(self):
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes]] = []
        self.attempts: Counter = Counter()
        self._scripts: dict[str, list[str]] = defaultdict(list)
        self._hold_after: int | None = None
        self._released = threading.Event()
        self.waiting = 0
        self.sessions: set = set()  # (host, port) of each client connection that sent DATA
        self.controller = _AnyPortController(self, hostname="127.0.0.1", port=0)

    # -- control from the test
    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self):
        self.release()
        if self.controller._thread is not None:
            self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port

    def script(self, recipient: str, *answers: str):
        """Answer the next DATA commands for ``recipient`` with these replies, then accept."""
        with self._lock:
            self._scripts[recipient.lower()].extend(answers)

    def hold_after(self, count: int):
        """After ``count`` accepted messages, make every DATA wait until ``release()``."""
        self._hold_after = count
        self._released.clear()

    def release(self):
        """Let held DATA commands answer (with a 4xx) and stop holding new ones."""
        self._hold_after = None
        self._released.set()

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def by_recipient(self) -> dict[str, list[email.message.EmailMessage]]:
        out: dict[str, list] = defaultdict(list)
        with self._lock:
            for rcpt, data in self.messages:
                out[rcpt].append(email.message_from_bytes(data, policy=policy.default))
        return out

    # -- aiosmtpd handler
    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0].lower()
        with self._lock:
            self.sessions.add(tuple(session.peer))
            self.attempts[rcpt] += 1
            scripted = self._scripts[rcpt].pop(0) if self._scripts[rcpt] else None
            hold = self._hold_after is not None and len(self.messages) >= self._hold_after
            if hold:
                self.waiting += 1
        if scripted:
            return scripted
        if hold:
            # Held: the client waits for our reply; if it is killed meanwhile, nothing is accepted.
            while not self._released.is_set():
                await asyncio.sleep(0.02)
            with self._lock:
                self.waiting -= 1
            return "421 4.3.2 Held by the test, not accepted"
        with self._lock:
            self.messages.append((rcpt, envelope.content))
        return "250 2.0.0 OK"
