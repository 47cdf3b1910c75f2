"""An SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, for pipeline tests.

It can answer chosen recipients with scripted replies (``451 ...`` then accept, or
``550 ...``) and can hold every message after the n-th, at ``RCPT`` (before the client
has sent it) or after its final dot (the server has it all and has not answered yet),
which lets a test kill a worker while it is provably waiting on the server.
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
    def __init__(self, *, pipelining: bool = False):
        self.pipelining = pipelining  # advertise PIPELINING (RFC 2920), as Postfix does
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes]] = []
        self.attempts: Counter = Counter()
        self._scripts: dict[str, list[str]] = defaultdict(list)
        self._rcpt_scripts: dict[str, list[str]] = defaultdict(list)
        self._hold_after: int | None = None
        self._hold_at = "data"
        self._accept_held = False
        self._held: list[tuple[str, bytes]] = []  # received in full, answer held
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

    def script_rcpt(self, recipient: str, *answers: str):
        """Answer the next ``RCPT TO`` commands for ``recipient`` with these replies, then accept."""
        with self._lock:
            self._rcpt_scripts[recipient.lower()].extend(answers)

    def hold_after(self, count: int, *, at: str = "data"):
        """After ``count`` accepted messages, make every ``RCPT`` (``at="rcpt"``) or every
        received message, before its answer (``at="data"``), wait until ``release()``."""
        assert at in ("rcpt", "data")
        self._hold_at = at
        self._hold_after = count
        self._released.clear()

    def release(self, *, accept: bool = False):
        """Answer what is held and stop holding: a 4xx, or (``accept``, messages held after
        their dot) keep them, as an MTA does when the client vanished after the dot."""
        with self._lock:
            self._accept_held = accept
            if accept:
                self.messages.extend(self._held)
            self._held.clear()
            self._hold_after = None
        self._released.set()

    def held_recipients(self) -> list[str]:
        """Recipients of the messages received in full whose answer is held."""
        with self._lock:
            return sorted(address for address, _ in self._held)

    def _holding(self, at: str) -> bool:
        with self._lock:
            hold = self._hold_at == at and self._hold_after is not None and len(self.messages) >= self._hold_after
            if hold:
                self.waiting += 1
        return hold

    async def _wait_for_release(self):
        while not self._released.is_set():
            await asyncio.sleep(0.02)
        with self._lock:
            self.waiting -= 1

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
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd reads commands one line at a time, so pipelined ones just queue
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._lock:
            scripted = self._rcpt_scripts[address.lower()]
            if scripted:
                return scripted.pop(0)
        if self._holding("rcpt"):
            await self._wait_for_release()  # the client has not sent the message
            return "451 4.3.2 Held by the test, try again"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0].lower()
        with self._lock:
            self.sessions.add(tuple(session.peer))
            self.attempts[rcpt] += 1
            scripted = self._scripts[rcpt].pop(0) if self._scripts[rcpt] else None
        if scripted:
            return scripted
        if self._holding("data"):
            # The whole message is here; the client waits for our answer. Kept aside now:
            # aiosmtpd cancels this handler when the client's connection drops.
            with self._lock:
                self._held.append((rcpt, envelope.content))
            await self._wait_for_release()
            return "250 2.0.0 OK" if self._accept_held else "421 4.3.2 Held by the test, not accepted"
        with self._lock:
            self.messages.append((rcpt, envelope.content))
        return "250 2.0.0 OK"
