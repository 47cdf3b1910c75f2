"""The embedded default mail backend: one ``.eml`` file per message in ``OUTBOX_DIR``."""

import threading
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


class OutboxBackend(BaseEmailBackend):
    """Write each message as its own ``.eml`` file, which any mail client opens.

    Files are written under a temporary name and renamed, so a reader never sees
    half a message.
    """

    _lock = threading.Lock()

    def __init__(self, *, outbox_dir=None, fail_silently=False, **kwargs):
        super().__init__(fail_silently=fail_silently)
        self.outbox_dir = Path(outbox_dir or settings.OUTBOX_DIR)

    def send_messages(self, email_messages):
        if not email_messages:
            return 0
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
            tmp = self.outbox_dir / f".{name}.tmp"
            wire_bytes = getattr(message, "wire_bytes", None)  # our messages: exactly what SMTP would carry
            tmp.write_bytes(wire_bytes() if wire_bytes else message.message().as_bytes(linesep="\r\n"))
            tmp.replace(self.outbox_dir / name)
            sent += 1
        return sent
