"""The SMTP sink (``devtools.smtp_sink``) in a process of its own, for benchmarks that
measure real socket I/O: ``python -m devtools.smtp_sink_process --smtp-port P
--control-port C [--no-pipelining]`` (``python -m devtools.smtp_sink`` runs the same),
steered over a tiny HTTP control port; ``SinkProcess`` is its client."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devtools.smtp_sink import HOST, BulkController, SinkHandler


def control_server(handler: SinkHandler, port: int, *, extra_actions=None) -> ThreadingHTTPServer:
    """The control API; ``extra_actions`` maps more POST paths to callables taking the payload."""
    extra_actions = extra_actions or {}

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
            answers = {"/summary": handler.summary, "/stats": handler.stats}
            if self.path in answers:
                self._reply(200, json.dumps(answers[self.path]()).encode())
            elif self.path == "/sample":
                self._reply(200, handler.sample or b"", "message/rfc822")
            else:
                self._reply(404, b"{}")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            actions = {"/configure": lambda: handler.configure(**payload), "/reset": handler.reset}
            actions.update({path: (lambda act=act: act(**payload)) for path, act in extra_actions.items()})
            if self.path not in actions:
                self._reply(404, b"{}")
                return
            try:
                actions[self.path]()
            except (TypeError, ValueError) as exc:
                self._reply(400, json.dumps({"error": str(exc)}).encode())
                return
            self._reply(200, json.dumps(handler.summary()).encode())

    return ThreadingHTTPServer((HOST, port), Control)


def main(argv=None):
    parser = argparse.ArgumentParser(description="A loopback SMTP sink in its own process.")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--no-pipelining", action="store_true", help="do not advertise PIPELINING")
    args = parser.parse_args(argv)

    handler = SinkHandler(pipelining=not args.no_pipelining, keep=False)  # counts only: runs take 100,000s
    server = {"controller": BulkController(handler, hostname=HOST, port=args.smtp_port)}
    server["controller"].start()
    lock = threading.Lock()

    def refuse(*, seconds: float):
        """Close the SMTP port (connections are refused, open ones dropped) for ``seconds``;
        the counts live on. Returns once the port is closed."""
        with lock:
            server["controller"].stop()

        def reopen():
            time.sleep(float(seconds))
            with lock:
                server["controller"] = BulkController(handler, hostname=HOST, port=args.smtp_port)
                server["controller"].start()

        threading.Thread(target=reopen, daemon=True).start()

    http = control_server(handler, args.control_port, extra_actions={"/refuse": refuse})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        stop.wait()
    finally:
        http.shutdown()
        with lock:
            if server["controller"]._thread is not None:
                server["controller"].stop()


class SinkProcess:
    """Client of the sink running in its own process (``main``), with its log in ``workdir``."""

    def __init__(self, workdir: Path, *, smtp_port: int, control_port: int, pipelining: bool = True):
        self.workdir = Path(workdir)
        self.smtp_port = smtp_port
        self.control_port = control_port
        self.pipelining = pipelining  # advertised, as real MTAs do
        self.proc: subprocess.Popen | None = None

    @property
    def email_url(self) -> str:
        return f"smtp://{HOST}:{self.smtp_port}"

    def start(self, *, timeout: float = 20) -> SinkProcess:
        command = [sys.executable, "-m", "devtools.smtp_sink_process", "--smtp-port", str(self.smtp_port)]
        command += ["--control-port", str(self.control_port), *([] if self.pipelining else ["--no-pipelining"])]
        log = (self.workdir / "smtp-sink.log").open("ab")
        repo = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=repo, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.summary()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the SMTP sink did not start within {timeout}s (see {self.workdir / 'smtp-sink.log'})")

    def stop(self, timeout: float = 10) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _call(self, path: str, payload: dict | None = None):
        url = f"http://{HOST}:{self.control_port}{path}"
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            body = response.read()
        return body if path == "/sample" else json.loads(body)

    def summary(self) -> dict:
        return self._call("/summary")

    def stats(self) -> dict:
        return self._call("/stats")

    def sample(self) -> bytes:
        return self._call("/sample")

    def reset(self) -> dict:
        return self._call("/reset", {})

    def configure(self, *, fail_every: int = 0, reject=(), reject_at: str = "rcpt", delay_ms: float = 0) -> dict:
        payload = {"fail_every": fail_every, "reject": list(reject), "reject_at": reject_at, "delay_ms": delay_ms}
        return self._call("/configure", payload)

    def refuse_connections(self, seconds: float) -> dict:
        """The SMTP port closes now (connections refused) and opens again after ``seconds``."""
        return self._call("/refuse", {"seconds": seconds})


if __name__ == "__main__":
    main()
