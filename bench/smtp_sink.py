"""A loopback SMTP server that counts what it accepts, per recipient.

Runs in a process of its own (so a benchmark measures real socket I/O, not an
in-process shortcut) and is steered over a tiny HTTP control port:

- ``GET /summary``: totals and the first/last acceptance times (cheap, for polling);
- ``GET /stats``: the same plus per-recipient counts of accepted, deferred (451)
  and rejected (550) messages;
- ``GET /sample``: the bytes of the first message accepted since the last reset;
- ``POST /configure`` with JSON ``{"fail_every": 5, "reject": [...], "reject_at": "rcpt", "delay_ms": 0}``:
  answer ``451`` to every ``fail_every``-th message (0: never), and ``550`` for the
  listed addresses, at ``RCPT TO`` (as real servers do for unknown users) or at ``DATA``;
  ``delay_ms`` makes each ``RCPT TO`` take that long (a slow server; before the message
  is sent, so it does not widen the window between "accepted" and "recorded as sent");
- ``POST /reset``: forget all counts (the configuration stays).

It advertises PIPELINING (RFC 2920) as real MTAs do; ``--no-pipelining`` turns that off.

Usage: ``python -m bench.smtp_sink --smtp-port P --control-port C [--no-pipelining]`` (both on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, syntax

HOST = "127.0.0.1"


_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


def _message_id(content: bytes) -> str:
    match = _MESSAGE_ID.search(content.split(b"\r\n\r\n", 1)[0])
    return match.group(1).strip().decode(errors="replace") if match else ""


class CountingHandler:
    """aiosmtpd handler: accept, defer (451) or reject (550), and count each outcome."""

    def __init__(self, *, pipelining: bool = True):
        self.lock = threading.Lock()
        self.pipelining = pipelining
        self.fail_every = 0
        self.reject: set[str] = set()
        self.reject_at = "rcpt"
        self.delay = 0.0
        self.reset()

    def reset(self):
        with self.lock:
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

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """Advertise PIPELINING (RFC 2920), as Postfix, Exim and the big relays do, unless
        the sink runs with ``--no-pipelining``. aiosmtpd reads one command line at a
        time, so a pipelined group is simply answered in order."""
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.delay:
            await asyncio.sleep(self.delay)  # a slower server, so drills can strike mid-issue
        lowered = address.lower()
        if self.reject_at == "rcpt" and lowered in self.reject:
            with self.lock:
                self.rejected[lowered] += 1
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        recipients = [address.lower() for address in envelope.rcpt_tos]
        with self.lock:
            if self.reject_at == "data" and any(r in self.reject for r in recipients):
                for recipient in recipients:
                    self.rejected[recipient] += 1
                return "550 5.1.1 No such user"
            self.messages_seen += 1
            if self.fail_every and self.messages_seen % self.fail_every == 0:
                for recipient in recipients:
                    self.deferred[recipient] += 1
                return "451 4.3.0 Try again later"
            now = time.time()
            message_id = _message_id(envelope.original_content or b"")
            for recipient in recipients:
                self.accepted[recipient] += 1
                self.message_ids.setdefault(recipient, []).append(message_id)
            self.accepted_total += 1
            self.bytes_accepted += len(envelope.original_content or b"")
            if self.first_accepted_at is None:
                self.first_accepted_at = now
                self.sample = envelope.original_content
            self.last_accepted_at = now
        return "250 2.0.0 Accepted"

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
    """aiosmtpd's server, reading the DATA phase in blocks instead of line by line.

    aiosmtpd's own loop costs about 15 µs per line (about 130 digests per second on this
    machine, one core busy): the sink would be the slowest part of every measurement.
    Reading blocks until the ``<CRLF>.<CRLF>`` terminator and undoing dot-stuffing gives
    the handler the same bytes. No size limit: this server only ever hears loopback.

    """

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
        await self.push("250 OK" if status is None else status)


class BulkController(Controller):
    def factory(self):
        return BulkDataSMTP(self.handler, **self.SMTP_kwargs)


def control_server(handler: CountingHandler, port: int) -> ThreadingHTTPServer:
    class Control(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status: int, body: bytes, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/summary":
                self._reply(200, json.dumps(handler.summary()).encode())
            elif self.path == "/stats":
                self._reply(200, json.dumps(handler.stats()).encode())
            elif self.path == "/sample":
                self._reply(200, handler.sample or b"", "message/rfc822")
            else:
                self._reply(404, b"{}")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            try:
                if self.path == "/configure":
                    handler.configure(**payload)
                elif self.path == "/reset":
                    handler.reset()
                else:
                    self._reply(404, b"{}")
                    return
            except (TypeError, ValueError) as exc:
                self._reply(400, json.dumps({"error": str(exc)}).encode())
                return
            self._reply(200, json.dumps(handler.summary()).encode())

    return ThreadingHTTPServer((HOST, port), Control)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--no-pipelining", action="store_true", help="do not advertise PIPELINING")
    args = parser.parse_args(argv)

    handler = CountingHandler(pipelining=not args.no_pipelining)
    controller = BulkController(handler, hostname=HOST, port=args.smtp_port)
    controller.start()
    http = control_server(handler, args.control_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        stop.wait()
    finally:
        http.shutdown()
        controller.stop()


if __name__ == "__main__":
    main()
