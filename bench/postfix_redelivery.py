"""Drill: Postfix itself delivers a message twice when it is stopped after its delivery
agent wrote the Maildir file and before its queue manager recorded that.

The message was answered 250, so no client sends it again: the second copy is Postfix's
(the same queue ID), the window the restart test in tests/e2e/test_postfix_delivery.py
allows. strace holds the ``virtual`` agent for 8 s right after the Maildir write (its
``unlink`` of the temporary file), so ``postfix stop`` lands in that window every time.

    sudo .venv/bin/python bench/postfix_redelivery.py     (root, Debian's postfix, strace)
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.postfix import PrivatePostfix  # noqa: E402

ADDRESS = "reader@example.org"


def send(port: int, n: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.digest.test", timeout=10) as session:
        message = f"Subject: m{n}\r\nMessage-ID: <m{n}@digest.test>\r\n\r\nhello {n}\r\n"
        session.sendmail("digest@digest.test", [ADDRESS], message)  # raises unless answered 250


def main() -> int:
    postfix = PrivatePostfix(domain="example.org", mailboxes=[ADDRESS])
    try:
        postfix.start()
        send(postfix.port, 1)  # starts a virtual agent, which Postfix then reuses
        postfix.wait_until_delivered(1)
        agent = postfix._daemons("virtual")[0]
        hold = "inject=unlink,unlinkat:delay_exit=8000000"  # 8 s after the Maildir write
        tracer = subprocess.Popen(["strace", "-q", "-p", str(agent), "-e", "trace=unlink,unlinkat", "-e", hold])
        time.sleep(1)
        send(postfix.port, 2)
        deadline = time.monotonic() + 10
        while postfix.delivered_count() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        postfix.stop()  # as the restart test does
        tracer.wait(30)
        postfix.start()
        time.sleep(3)
        copies = postfix.copies(ADDRESS)
        second = [c for c in copies if c["message_id"] == "<m2@digest.test>"]
        print(f"message 2, answered 250: {len(second)} copies, queue IDs {[c['queue_id'] for c in second]}")
        return 0 if len(second) == 2 and len({c["queue_id"] for c in second}) == 1 else 1
    finally:
        postfix.destroy()


if __name__ == "__main__":
    sys.exit(main())
