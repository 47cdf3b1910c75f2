"""What the subscriptions app tells the layers above it (they connect receivers)."""

from django.dispatch import Signal

# Sent inside the transaction that suppresses ``email`` (a hard bounce, a complaint, an
# operator): digests settles the address's queued deliveries as suppressed.
address_suppressed = Signal()

# Sent inside the transaction that confirms ``subscriber`` (PENDING -> ACTIVE): digests
# queues the welcome issue, sent once the confirmation commits.
subscriber_confirmed = Signal()

# Sent with ``subscriber`` and ``data`` (a dict) when a person exports their own data:
# apps above add what they keep about them (digests: the issues mailed to them).
personal_data_requested = Signal()
