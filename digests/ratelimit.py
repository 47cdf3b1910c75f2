"""A global send rate limit shared by every worker process.

GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp): the
key holds the "theoretical arrival time" of the next message. A message may go when
``now >= tat - burst_tolerance``; sending moves ``tat`` one emission interval on.
The check and the move happen in one Lua script, atomically in Redis, using Redis's
own clock, so any number of processes on any number of machines share one rate.

Celery's ``rate_limit`` is per worker process and would multiply with the number of
workers; this does not. Without Redis (embedded default, eager tasks) an in-process
limiter with the same algorithm keeps one process to the rate.
"""

from __future__ import annotations

import math
import threading
import time

from django.conf import settings

DEFAULT_KEY = "digests:send-rate"

# KEYS[1] = bucket key; ARGV[1] = emission interval (µs); ARGV[2] = burst tolerance (µs);
# ARGV[3] = how many messages. Returns 0 when they may all go now (their slots are
# taken), else how many µs to wait before asking again.
_GCRA_LUA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local allowed_at = tat + (count - 1) * interval - tolerance
if now < allowed_at then
  return allowed_at - now
end
local new_tat = tat + count * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
"""


class RateLimitTimeout(Exception):
    """No send slot within ``max_wait`` seconds: the caller retries the work later."""


class _Limiter:
    def __init__(self, rate_per_second: float, burst: int = 1):
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.burst = max(burst, 1)
        self.interval_us = 1_000_000 / rate_per_second
        self.tolerance_us = self.interval_us * (self.burst - 1)

    def try_acquire(self, count: int = 1) -> float:
        """0.0 when ``count`` messages may go now (and their slots are taken), else seconds to wait."""
        raise NotImplementedError

    def acquire(self, count: int = 1, *, max_wait: float = 30.0) -> float:
        """Block until ``count`` messages (at most ``burst``) may go; returns the seconds waited."""
        if not 1 <= count <= self.burst:
            raise ValueError(f"count must be between 1 and the burst ({self.burst}), not {count}")
        started = time.monotonic()
        while True:
            wait = self.try_acquire(count)
            if wait <= 0:
                return time.monotonic() - started
            if time.monotonic() - started + wait > max_wait:
                raise RateLimitTimeout(f"no send slot within {max_wait:.0f}s")
            time.sleep(wait)


class RedisRateLimiter(_Limiter):
    def __init__(self, url: str, rate_per_second: float, *, burst: int = 1, key: str = DEFAULT_KEY):
        import redis

        super().__init__(rate_per_second, burst)
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.key = key
        self._script = self.client.register_script(_GCRA_LUA)

    def try_acquire(self, count: int = 1) -> float:
        interval, tolerance = math.ceil(self.interval_us), math.ceil(self.tolerance_us)
        wait_us = int(self._script(keys=[self.key], args=[interval, tolerance, count]))
        return wait_us / 1_000_000


class LocalRateLimiter(_Limiter):
    """The same algorithm for one process (threads share it)."""

    def __init__(self, rate_per_second: float, *, burst: int = 1):
        super().__init__(rate_per_second, burst)
        self._lock = threading.Lock()
        self._tat = 0.0

    def try_acquire(self, count: int = 1) -> float:
        with self._lock:
            now = time.monotonic() * 1_000_000
            tat = max(self._tat, now)
            allowed_at = tat + (count - 1) * self.interval_us - self.tolerance_us
            if now < allowed_at:
                return (allowed_at - now) / 1_000_000
            self._tat = tat + count * self.interval_us
            return 0.0


_limiters: dict[tuple, _Limiter] = {}
_limiters_lock = threading.Lock()


def get_limiter() -> _Limiter:
    """The limiter for digest sends: Redis when ``settings.REDIS_URL`` is set, else in-process."""
    rate = settings.SEND_RATE_PER_SECOND
    burst = max(1, int(rate))  # up to one second's worth at once, never more
    key = (settings.REDIS_URL, rate, burst)
    with _limiters_lock:
        if key not in _limiters:
            if settings.REDIS_URL:
                _limiters[key] = RedisRateLimiter(settings.REDIS_URL, rate, burst=burst)
            else:
                _limiters[key] = LocalRateLimiter(rate, burst=burst)
        return _limiters[key]
