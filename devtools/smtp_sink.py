"""A loopback SMTP server (aiosmtpd) for the tests and the benchmarks: one handler that
counts, keeps and refuses messages as it is told.

- In the test's own process: ``SmtpSink().start()`` keeps every message (``messages``,
  ``by_recipient()``), answers chosen recipients with scripted replies (``script``,
  ``script_rcpt``) and can hold messages after the n-th, at ``RCPT`` or after their
  final dot (``hold_after``, ``release``), which lets a test kill a worker while it is
  provably waiting on the server. Scripted DATA answers can also be faults of the
  window after the final dot (RFC 1047): ``KEEP_THEN_DROP`` (the server has the message,
  the client never hears so), ``ANSWER_THEN_DROP`` and ``slow_answer(seconds)``.
- In a process of its own (``devtools.smtp_sink_process``), for benchmarks that measure real socket I/O:
  ``python -m devtools.smtp_sink --smtp-port P --control-port C [--no-pipelining]``,
  steered over a tiny HTTP control port (``SinkProcess`` is its client):
  ``GET /summary`` (totals, cheap for polling), ``GET /stats`` (per-recipient counts of
  accepted, deferred and rejected messages), ``GET /sample`` (the first message's
  bytes), ``POST /configure`` (``fail_every``: ``451`` to every n-th message;
  ``reject``: ``550`` for these addresses at ``reject_at`` ``rcpt`` or ``data``;
  ``delay_ms``: a slow ``RCPT``) and ``POST /reset``.

It reads the DATA phase in blocks (``BulkDataSMTP``) and advertises PIPELINING (RFC
2920), as Postfix and the big relays do, unless told not to.
"""

from __future__ import annotations

import asyncio
import email
import re
import threading
import time
from collections import Counter, defaultdict
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, syntax

HOST = "127.0.0.1"
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)

# Scripted DATA answers (``script``) that are faults after the final dot: the server keeps
# the message, then drops the connection without answering (a server killed between
# queueing the message and its 250: RFC 1047), or after answering 250.
KEEP_THEN_DROP = "keep, then drop the connection unanswered"
ANSWER_THEN_DROP = "keep, answer 250, then drop the connection"
_SLOW = "keep, answer 250 after "


def slow_answer(seconds: float) -> str:
    """A scripted DATA answer: keep the message, answer 250 only after ``seconds`` (a loaded
    server; the client may give up first, and the message is delivered all the same)."""
    return f"{_SLOW}{seconds}"


def _message_id(content: bytes) -> str:
    match = _MESSAGE_ID.search(content.split(b"\r\n\r\n", 1)[0])
    return match.group(1).strip().decode(errors="replace") if match else ""


class SinkHandler:
    """aiosmtpd handler: accept, defer (451) or reject (550), count each outcome and,
    when ``keep`` is on, keep what it accepts."""

    def __init__(self, *, pipelining: bool = True, keep: bool = True):
        self.lock = threading.Lock()
        self.pipelining = pipelining
        self.keep = keep
        self.fail_every = 0
        self.reject: set[str] = set()
        self.reject_at = "rcpt"
        self.delay = 0.0
        self._scripts: dict[str, list[str]] = defaultdict(list)
        self._rcpt_scripts: dict[str, list[str]] = defaultdict(list)
        self._hold_after: int | None = None
        self._hold_at = "data"
        self._accept_held = False
        self._held: list[tuple[str, bytes]] = []  # received in full, answer held
        self._released = threading.Event()
        self.waiting = 0
        self.sender_refusal: str | None = None  # the answer to every MAIL FROM, when set
        self.reset()

    def reset(self):
        with self.lock:
            self.messages: list[tuple[str, bytes]] = []
            self.attempts: Counter[str] = Counter()  # DATA commands per recipient
            self.sessions: set = set()  # (host, port) of each client connection that sent DATA
            self.accepted: Counter[str] = Counter()
            self.message_ids: dict[str, list[str]] = {}
            self.deferred: Counter[str] = Counter()
            self.rejected: Counter[str] = Counter()
            self.messages_seen = 0
            self.accepted_total = 0
            self.bytes_accepted = 0
            self.first_accepted_at: float | None = None
            self.last_accepted_at: float | None = None
            self.sample: bytes | None = None
            self.mail_options: list[list[str]] = []  # the MAIL FROM parameters of each accepted message
            self.ehlo_names: list[str] = []

    def configure(self, *, fail_every=None, reject=None, reject_at=None, delay_ms=None):
        with self.lock:
            if delay_ms is not None:
                self.delay = float(delay_ms) / 1000
            if fail_every is not None:
                self.fail_every = int(fail_every)
            if reject is not None:
                self.reject = {address.lower() for address in reject}
            if reject_at is not None:
                if reject_at not in ("rcpt", "data"):
                    raise ValueError("reject_at must be rcpt or data")
                self.reject_at = reject_at

    # -- scripted answers and holds (tests) ------------------------------------------------

    def script(self, recipient: str, *answers: str):
        """Answer the next DATA commands for ``recipient`` with these replies, then accept."""
        with self.lock:
            self._scripts[recipient.lower()].extend(answers)

    def script_rcpt(self, recipient: str, *answers: str):
        """Answer the next ``RCPT TO`` commands for ``recipient`` with these replies, then accept."""
        with self.lock:
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
        with self.lock:
            self._accept_held = accept
            if accept:
                self.messages.extend(self._held)
            self._held.clear()
            self._hold_after = None
        self._released.set()

    def held_recipients(self) -> list[str]:
        """Recipients of the messages received in full whose answer is held."""
        with self.lock:
            return sorted(address for address, _ in self._held)

    def _holding(self, at: str) -> bool:
        with self.lock:
            hold = self._hold_at == at and self._hold_after is not None and self.accepted_total >= self._hold_after
            if hold:
                self.waiting += 1
        return hold

    async def _wait_for_release(self):
        while not self._released.is_set():
            await asyncio.sleep(0.02)
        with self.lock:
            self.waiting -= 1

    # -- aiosmtpd hooks ------------------------------------------------------------------------

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.ehlo_names.append(hostname)
        if self.pipelining:  # aiosmtpd reads one command line at a time: a pipelined group just queues
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.sender_refusal:
            return self.sender_refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.delay:
            await asyncio.sleep(self.delay)  # a slower server, so drills can strike mid-issue
        lowered = address.lower()
        with self.lock:
            scripted = self._rcpt_scripts[lowered]
            if scripted:
                return scripted.pop(0)
            if self.reject_at == "rcpt" and lowered in self.reject:
                self.rejected[lowered] += 1
                return "550 5.1.1 No such user"
        if self._holding("rcpt"):
            await self._wait_for_release()  # the client has not sent the message
            return "451 4.3.2 Held by the test, try again"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        recipients = [address.lower() for address in envelope.rcpt_tos]
        content = envelope.original_content or b""
        refusal = self._refusal(session, recipients)
        if refusal and refusal.startswith("keep, "):  # a fault after the dot: the message is delivered
            self._accept(recipients, content)
            if refusal.startswith(_SLOW):
                await asyncio.sleep(float(refusal[len(_SLOW) :]))
                return "250 2.0.0 OK"
            return refusal  # BulkDataSMTP answers and drops as it says
        if refusal:
            return refusal
        if self._holding("data"):
            # The whole message is here; the client waits for our answer. Kept aside now:
            # aiosmtpd cancels this handler when the client's connection drops.
            with self.lock:
                self._held.append((recipients[0], content))
            await self._wait_for_release()
            return "250 2.0.0 OK" if self._accept_held else "421 4.3.2 Held by the test, not accepted"
        self._accept(recipients, content)
        with self.lock:
            self.mail_options.append(list(envelope.mail_options))
        return "250 2.0.0 OK"

    def _refusal(self, session, recipients: list[str]) -> str | None:
        """A scripted answer, a rejection or every n-th message's deferral; None to accept."""
        with self.lock:
            self.sessions.add(tuple(session.peer))
            for recipient in recipients:
                self.attempts[recipient] += 1
            scripted = self._scripts[recipients[0]]
            if scripted:
                return scripted.pop(0)
            if self.reject_at == "data" and any(r in self.reject for r in recipients):
                for recipient in recipients:
                    self.rejected[recipient] += 1
                return "550 5.1.1 No such user"
            self.messages_seen += 1
            if self.fail_every and self.messages_seen % self.fail_every == 0:
                for recipient in recipients:
                    self.deferred[recipient] += 1
                return "451 4.3.0 Try again later"
        return None

    def _accept(self, recipients: list[str], content: bytes) -> None:
        now = time.time()
        message_id = _message_id(content)
        with self.lock:
            for recipient in recipients:
                self.accepted[recipient] += 1
                self.message_ids.setdefault(recipient, []).append(message_id)
                if self.keep:
                    self.messages.append((recipient, content))
            self.accepted_total += 1
            self.bytes_accepted += len(content)
            if self.first_accepted_at is None:
                self.first_accepted_at = now
                self.sample = content
            self.last_accepted_at = now

    # -- what it saw -------------------------------------------------------------------------------

    def by_recipient(self) -> dict[str, list[email.message.EmailMessage]]:
        out: dict[str, list] = defaultdict(list)
        with self.lock:
            for rcpt, data in self.messages:
                out[rcpt].append(email.message_from_bytes(data, policy=policy.default))
        return out

    def summary(self) -> dict:
        with self.lock:
            return {
                "accepted_total": self.accepted_total,
                "unique_recipients": len(self.accepted),
                "deferred_total": sum(self.deferred.values()),
                "rejected_total": sum(self.rejected.values()),
                "bytes_accepted": self.bytes_accepted,
                "first_accepted_at": self.first_accepted_at,
                "last_accepted_at": self.last_accepted_at,
                "fail_every": self.fail_every,
                "reject_count": len(self.reject),
                "delay_ms": self.delay * 1000,
            }

    def stats(self) -> dict:
        summary = self.summary()
        with self.lock:
            summary.update(
                accepted=dict(self.accepted),
                deferred=dict(self.deferred),
                rejected=dict(self.rejected),
                # Message-IDs of recipients who got more than one message: a resend of the
                # same message keeps its ID (receivers may fold it), a true duplicate does not.
                repeated=[[r, self.message_ids[r]] for r, n in self.accepted.items() if n > 1],
            )
        return summary


class BulkDataSMTP(SMTP):
    """aiosmtpd's server, reading the DATA phase in blocks up to the ``<CRLF>.<CRLF>``
    terminator instead of line by line (with its own loop the sink, not the code under
    test, was the slowest part of a benchmark: bench/README.md), undoing dot-stuffing.
    No size limit: this server only ever hears loopback."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        buffer = bytearray()
        # Up to the terminator and not a byte further: with PIPELINING, what follows it
        # is the client's next command.
        while not (buffer.endswith(b"\r\n.\r\n") or buffer == b".\r\n"):
            try:
                buffer += await self._reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as error:  # a long stretch without ".\r\n"
                buffer += await self._reader.readexactly(error.consumed)
            except asyncio.IncompleteReadError:  # the client went away mid-message
                return
        # A line "." inside the message was sent as "..", so the terminator is unambiguous.
        content = bytes(buffer[:-3]).replace(b"\r\n..", b"\r\n.")
        if content.startswith(b".."):
            content = content[1:]
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        if status in (KEEP_THEN_DROP, ANSWER_THEN_DROP):
            if status == ANSWER_THEN_DROP:
                await self.push("250 2.0.0 OK")
            self.transport.close()
            return
        await self.push("250 OK" if status is None else status)


class BulkController(Controller):
    """Serves ``BulkDataSMTP``; port 0 picks a free port, known once started."""

    def factory(self):
        return BulkDataSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink(SinkHandler):
    """The sink in this process, on a free port of 127.0.0.1."""

    def __init__(self, *, pipelining: bool = False, **smtp_options):
        """``smtp_options`` go to aiosmtpd's server (``tls_context``, ``enable_SMTPUTF8``...)."""
        super().__init__(pipelining=pipelining, keep=True)
        self.controller = BulkController(self, hostname=HOST, port=0, **smtp_options)

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

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def __getattr__(name: str):
    """``SinkProcess`` and ``control_server`` live in ``devtools.smtp_sink_process`` (imported lazily:
    it imports this module)."""
    if name in ("SinkProcess", "control_server", "main"):
        from devtools import smtp_sink_process

        return getattr(smtp_sink_process, name)
    raise AttributeError(name)


if __name__ == "__main__":
    from devtools.smtp_sink_process import main

    main()
