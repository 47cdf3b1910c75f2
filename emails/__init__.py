"""Every email the service sends, below the apps that send them.

- ``emails.rendering``: templates compiled once, rendered per person (``render``).
- ``emails.messages``: the message with our headers, DKIM-signed, as SMTP carries it
  (``build_message``).
- ``emails.smtp``: one message over an open SMTP session in steps (digests' claims sit
  between them), and ``SmtpBackend`` (EHLO name, private CA); ``emails.replies``: what an
  SMTP server's refusal means, read with the step it answered.
- ``emails.checks``: system checks of the mail settings (a sender servers accept).
- ``emails.outbox``: the embedded default backend, one ``.eml`` per message.
"""

from emails.messages import build_message, new_message_id
from emails.rendering import RenderedEmail, render

__all__ = ["RenderedEmail", "build_message", "new_message_id", "render"]
