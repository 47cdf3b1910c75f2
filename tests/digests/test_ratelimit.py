"""The global send rate limit: one rate for all threads and processes, kept in Redis."""

import multiprocessing
import threading
import time

import pytest

from digests.ratelimit import LocalRateLimiter, RateLimitTimeout, RedisRateLimiter, get_limiter

pytestmark = pytest.mark.redis


def _max_in_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _grab(limiter_factory, count: int, out: list):
    limiter = limiter_factory()
    for _ in range(count):
        limiter.acquire(max_wait=30)
        out.append(time.time())


def test_threads_share_one_redis_rate(clean_redis, redis_url):
    rate = 40.0
    stamps: list[float] = []
    threads = [
        threading.Thread(target=_grab, args=(lambda: RedisRateLimiter(redis_url, rate, key="t:threads"), 15, stamps))
        for _ in range(4)
    ]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    assert len(stamps) == 60
    assert elapsed >= (60 - 1) / rate * 0.95  # 4 threads together, not 4 × the rate
    assert _max_in_window(stamps, 0.5) <= rate * 0.5 + 1


def _process_main(redis_url, rate, count, queue):
    stamps: list[float] = []
    _grab(lambda: RedisRateLimiter(redis_url, rate, key="t:procs"), count, stamps)
    queue.put(stamps)


def test_processes_share_one_redis_rate(clean_redis, redis_url):
    rate, per_process, processes = 30.0, 12, 3
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_process_main, args=(redis_url, rate, per_process, queue)) for _ in range(processes)
    ]
    started = time.time()
    for worker in workers:
        worker.start()
    stamps = [stamp for _ in workers for stamp in queue.get(timeout=30)]
    for worker in workers:
        worker.join(timeout=10)
    elapsed = time.time() - started
    total = per_process * processes
    print(f"{total} sends from {processes} processes at {rate}/s took {elapsed:.2f}s")
    assert len(stamps) == total
    assert elapsed >= (total - 1) / rate * 0.95
    assert _max_in_window(stamps, 0.5) <= rate * 0.5 + 1


def test_burst_is_allowed_then_the_rate_holds(clean_redis, redis_url):
    limiter = RedisRateLimiter(redis_url, 10.0, burst=5, key="t:burst")
    assert [limiter.try_acquire() for _ in range(5)] == [0.0] * 5
    wait = limiter.try_acquire()
    assert 0.05 < wait <= 0.1


def test_waiting_too_long_raises_so_the_work_is_retried(clean_redis, redis_url):
    limiter = RedisRateLimiter(redis_url, 0.5, key="t:slow")
    limiter.acquire()
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(max_wait=0.2)


def test_in_process_limiter_without_redis(settings):
    settings.REDIS_URL = None
    settings.SEND_RATE_PER_SECOND = 50.0
    assert isinstance(get_limiter(), LocalRateLimiter) and get_limiter() is get_limiter()
    limiter = LocalRateLimiter(20.0)
    stamps: list[float] = []
    threads = [threading.Thread(target=_grab, args=(lambda: limiter, 5, stamps)) for _ in range(3)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stamps) == 15
    assert time.time() - started >= 14 / 20 * 0.95
    assert _max_in_window(stamps, 0.25) <= 20 * 0.25 + 1


def test_redis_limiter_when_configured(settings, redis_url):
    settings.REDIS_URL = redis_url
    assert isinstance(get_limiter(), RedisRateLimiter)


@pytest.mark.parametrize("backend", ["redis", "local"])
def test_slots_taken_several_at_once_count_against_the_same_rate(backend, clean_redis, redis_url):
    if backend == "redis":
        limiter = RedisRateLimiter(redis_url, 10.0, burst=5, key="t:count")
    else:
        limiter = LocalRateLimiter(10.0, burst=5)
    assert limiter.try_acquire(3) == 0.0
    assert limiter.try_acquire(2) == 0.0  # the burst (5) is used up
    assert 0.05 < limiter.try_acquire(1) <= 0.1
    assert 0.25 < limiter.try_acquire(3) <= 0.3  # three more slots: 0.3 s of rate
    with pytest.raises(ValueError):
        limiter.acquire(6)  # more than the burst could never be granted
