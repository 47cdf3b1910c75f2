"""Settings for the worker and dispatcher processes the pipeline tests start.

The real settings (from the environment the test passes) with the timeouts that make
recovery observable within seconds instead of an hour: the broker redelivers an
unacknowledged task after 10 s, a SENDING claim is trusted for 5 s, retries start
at half a second. The code paths are the production ones.
"""

import os

from digestsite.settings import *  # noqa: F403

CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("PIPELINE_VISIBILITY_TIMEOUT", "10"))
# kombu sweeps for abandoned (unacknowledged) messages every interval × throttle seconds
# (100 s by default); every second here. A sweep holds a mutex in Redis that expires after
# 300 s by default: a worker SIGKILLed mid-sweep (a drill kills them every second) would
# block every sweep after it for longer than a test waits; 3 s here.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": 3,
}
DIGEST_SENDING_LEASE_SECONDS = int(os.environ.get("PIPELINE_SENDING_LEASE", "5"))
DIGEST_RETRY_BASE_SECONDS = 0.5
DIGEST_RESCUE_AFTER_SECONDS = int(os.environ.get("PIPELINE_RESCUE_AFTER", "2"))
