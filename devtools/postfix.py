"""A private Postfix instance on 127.0.0.1 for tests: its own configuration, queue, data
and Maildir directories under one temporary folder, started with ``postfix -c DIR``, so
it never touches the machine's own Postfix (``/etc/postfix``, ``/var/spool/postfix``).

It listens on one loopback port with strict client settings
(``smtpd_forbid_unauth_pipelining``, ``smtpd_forbid_bare_newline``), relays nothing
(``default_transport = error``), and delivers to a Maildir per address of one virtual
domain; any other address of that domain is refused at ``RCPT TO`` with
``550 5.1.1 ... User unknown in virtual mailbox table``, as a real server would.

Needs Debian's ``postfix`` package and root (Postfix's daemons switch to the
``postfix`` user; Maildirs belong to ``nobody``).
"""

from __future__ import annotations

import contextlib
import email
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from email import policy
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
MAILDIR_OWNER = "65534"  # nobody / nogroup
# The queue ID Postfix's smtpd gave a message, from the Received header it added.
_QUEUE_ID = re.compile(rb"\(Postfix\) with E?SMTPS?A? id (\w+)")  # the first is the newest hop
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.M | re.I)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivatePostfix:
    def __init__(
        self, *, domain: str = "example.org", mailboxes=(), hostname: str = "mx.postfix.test", tls: tuple = ()
    ):
        """``tls``: (certificate file, key file) to offer STARTTLS with."""
        if not Path(POSTFIX).exists():
            raise RuntimeError("Postfix is not installed: apt-get install postfix (see .ci/run)")
        if os.geteuid() != 0:
            raise RuntimeError("a private Postfix instance needs root (its daemons switch users)")
        # Not under pytest's tmp_path: its folders are 0700 and the postfix user must reach the queue.
        self.root = Path(tempfile.mkdtemp(prefix="postfix-test-"))
        self.root.chmod(0o755)
        self.domain = domain
        self.hostname = hostname
        self.port = free_port()
        self.config = self.root / "etc"
        self.maildirs = self.root / "mail"
        self.log = self.root / "postfix.log"
        self._mailboxes: list[str] = []
        self._frozen: set[int] = set()
        self._tls = tls
        self._write_config()
        self.set_mailboxes(mailboxes)

    def _write_config(self) -> None:
        for sub in ("etc", "queue", "data", "mail"):
            (self.root / sub).mkdir()
        shutil.chown(self.root / "data", "postfix")
        shutil.chown(self.maildirs, int(MAILDIR_OWNER), int(MAILDIR_OWNER))
        root = self.root
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": root / "queue",
            "data_directory": root / "data",
            "maillog_file": self.log,
            "maillog_file_prefixes": root,
            "myhostname": self.hostname,
            "mydomain": self.hostname.split(".", 1)[1],
            "myorigin": "$mydomain",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": "",
            "relay_domains": "",
            "default_transport": "error",
            "relay_transport": "error",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_forbid_unauth_pipelining": "yes",
            "smtpd_forbid_bare_newline": "yes",
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": self.maildirs,
            "virtual_mailbox_maps": f"texthash:{self.config / 'vmailbox'}",
            "virtual_uid_maps": f"static:{MAILDIR_OWNER}",
            "virtual_gid_maps": f"static:{MAILDIR_OWNER}",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "smtputf8_enable": "yes",
            "smtpd_client_connection_count_limit": "50",
        }
        if self._tls:
            settings.update(
                smtpd_tls_security_level="may", smtpd_tls_cert_file=self._tls[0], smtpd_tls_key_file=self._tls[1]
            )
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        master = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            if line.startswith("smtp ") and " inet " in line:  # the only listener: our port on loopback
                line = f"127.0.0.1:{self.port} inet n - n - - smtpd"
            master.append(line)
        (self.config / "master.cf").write_text("\n".join(master) + "\n")

    def set_mailboxes(self, addresses) -> None:
        """The addresses with a Maildir; every other address of the domain is unknown."""
        self._mailboxes = [a.lower() for a in addresses]
        lines = [f"{a} {self.domain}/{a.split('@')[0]}/" for a in self._mailboxes]
        (self.config / "vmailbox").write_text("\n".join(lines) + "\n")
        if self.running():
            self._postfix("reload")

    # -- running --------------------------------------------------------------------------------

    def _postfix(self, command: str) -> None:
        done = subprocess.run([POSTFIX, "-c", str(self.config), command], capture_output=True, text=True)
        if done.returncode != 0 and command != "stop":
            raise RuntimeError(f"postfix {command} failed: {done.stderr}\n{self.log_tail()}")

    def running(self) -> bool:
        pid = self.root / "queue" / "pid" / "master.pid"
        if not pid.exists():
            return False
        try:
            os.kill(int(pid.read_text().split()[0]), 0)
        except (ValueError, ProcessLookupError, IndexError):
            return False
        return True

    def start(self, timeout: float = 20) -> PrivatePostfix:
        self._postfix("start")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(512).startswith(b"220"):
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"Postfix did not answer on 127.0.0.1:{self.port}\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> None:
        """``postfix stop``: the master and its daemons end; the queue stays on disk."""
        self._postfix("stop")
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _daemons(self, name: str) -> list[int]:
        """PIDs of this instance's ``name`` processes (children of its master)."""
        master = self.root / "queue" / "pid" / "master.pid"
        if not master.exists():
            return []
        master_pid = master.read_text().split()[0]
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, ...
                comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
            except (OSError, IndexError):
                continue  # the process ended
            if comm == name and fields[1] == master_pid:
                pids.append(int(stat.parent.name))
        return pids

    def freeze_smtpd(self, seconds: float) -> list[int]:
        """Stop (SIGSTOP) every smtpd process now serving a client for ``seconds``, then let
        them go on (SIGCONT): a server too loaded to answer, whose connections stay open.
        What a frozen smtpd has read, it queues once it runs again. Returns their PIDs."""
        pids = self._daemons("smtpd")
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        self._frozen.update(pids)
        timer = threading.Timer(seconds, self._thaw, args=(pids,))
        timer.daemon = True
        timer.start()
        return pids

    def _thaw(self, pids) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            self._frozen.discard(pid)

    def destroy(self) -> None:
        self._thaw(list(self._frozen))
        self.stop()
        keep = os.environ.get("POSTFIX_TEST_LOG_DIR")  # drills in a loop keep every run's log
        if keep and self.log.exists():
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log, Path(keep) / f"{self.root.name}.log")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    # -- what arrived -----------------------------------------------------------------------------

    def delivered_files(self) -> dict[str, list[Path]]:
        """Per address, the message files in its Maildir's ``new`` folder."""
        out = {}
        for address in self._mailboxes:
            new = self.maildirs / self.domain / address.split("@")[0] / "new"
            out[address] = sorted(new.iterdir()) if new.exists() else []
        return out

    def copies(self, address: str) -> list[dict]:
        """Each copy in ``address``'s Maildir: its file, Message-ID and the queue ID Postfix's
        smtpd gave it. One queue ID twice is Postfix delivering one queued message twice
        (its delivery agent or queue manager stopped between the Maildir write and
        noting it); two queue IDs are two SMTP transactions, that is the client sending again."""
        out = []
        for path in self.delivered_files().get(address.lower(), []):
            head = path.read_bytes().split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0] + b"\n"
            queue_id, message_id = _QUEUE_ID.search(head), _MESSAGE_ID.search(head)
            out.append({
                "file": path.name,
                "message_id": message_id.group(1).decode() if message_id else "",
                "queue_id": queue_id.group(1).decode() if queue_id else "",
            })  # fmt: skip
        return out

    def copies_report(self, address: str) -> str:
        """The copies of ``address`` and every log line about their queue IDs."""
        copies = self.copies(address)
        ids = {c["queue_id"] for c in copies if c["queue_id"]}
        log = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        lines = [line for line in log if any(f" {qid}:" in line for qid in ids)]
        return f"{address}: {copies}\n" + "\n".join(lines)

    def delivered_count(self) -> int:
        return sum(len(files) for files in self.delivered_files().values())

    def messages(self) -> dict[str, list[email.message.EmailMessage]]:
        return {
            address: [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
            for address, files in self.delivered_files().items()
        }

    def queue_is_empty(self) -> bool:
        for sub in ("incoming", "active", "deferred", "maildrop"):
            folder = self.root / "queue" / sub
            if folder.exists() and any(p.is_file() for p in folder.rglob("*")):
                return False
        return True

    def wait_until_delivered(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.delivered_count() >= count and self.queue_is_empty():
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.delivered_count()} of {count} delivered after {timeout}s\n{self.log_tail()}")
