"""``digestsite.cache.computed_once``: a value many ask for at once is computed once."""

import threading
import time

import pytest

from digestsite import cache as shared_cache


@pytest.fixture(params=["in process", "redis"])
def any_cache(request, settings):
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        request.getfixturevalue("clean_redis")
        settings.CACHES = {"default": {"BACKEND": "digestsite.cache.RedisCache", "LOCATION": redis_url}}
    from django.core.cache import cache

    cache.clear()
    return cache


def _ask_at_once(count: int, compute, **kwargs) -> list:
    answers, start = [], threading.Barrier(count)

    def ask():
        start.wait()
        answers.append(shared_cache.computed_once("answer", compute, 60, **kwargs))

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_many_asking_at_once_get_one_computation(any_cache):
    computed = []

    def compute():
        computed.append(1)
        time.sleep(0.3)  # long enough for all the others to ask meanwhile
        return {"ranked": len(computed)}

    assert _ask_at_once(8, compute) == [{"ranked": 1}] * 8
    assert len(computed) == 1
    assert any_cache.get("answer:computing") is None  # the lock is given back


def test_a_holder_too_slow_is_not_waited_for_beyond_the_bound(any_cache):
    any_cache.add("answer:computing", 1, 30)  # a holder that died without giving it back
    started = time.monotonic()
    assert shared_cache.computed_once("answer", lambda: "mine", 60, wait=0.2) == "mine"
    assert 0.2 <= time.monotonic() - started < 2
    assert any_cache.get("answer") == "mine"


def test_a_failed_computation_gives_the_lock_back(any_cache):
    def broken():
        raise RuntimeError("ranker down")

    with pytest.raises(RuntimeError):
        shared_cache.computed_once("answer", broken, 60)
    assert shared_cache.computed_once("answer", lambda: "again", 60, wait=0.1) == "again"


def test_with_the_cache_down_each_caller_computes(settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "digestsite.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    assert shared_cache.computed_once("answer", lambda: "computed", 60) == "computed"
    assert "cache unreadable" in caplog.text
