"""Failure counters behind sign-in throttling, in memory and in a real Redis."""

import time
import uuid

import pytest
import redis

from app.identity.throttle import LoginThrottle, MemoryFailureStore, RedisFailureStore
from tests.conftest import TEST_REDIS_URL, service_missing


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request):
    if request.param == "memory":
        return MemoryFailureStore()
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        service_missing(f"Redis at {TEST_REDIS_URL} is not reachable: {error}")
    return RedisFailureStore(client, prefix=f"test:{uuid.uuid4().hex}:")


def test_counts_until_reset(store):
    assert store.count("k") == (0, 0.0)
    assert store.add("k", 60) == 1
    assert store.add("k", 60) == 2
    count, remaining = store.count("k")
    assert count == 2 and 0 < remaining <= 60
    store.reset("k")
    assert store.count("k")[0] == 0


def test_counts_expire(store):
    store.add("k", 1)
    time.sleep(1.1)
    assert store.count("k")[0] == 0


def test_lockout_applies_per_account_and_per_address(store):
    throttle = LoginThrottle(store, max_per_account=2, max_per_address=3, lockout_s=60)
    throttle.failed("alice", "1.1.1.1")
    assert throttle.check("alice", "1.1.1.1") is None
    throttle.failed("alice", "2.2.2.2")
    assert throttle.check("alice", "3.3.3.3").retry_after_s > 0  # account locked anywhere
    assert throttle.check("bob", "1.1.1.1") is None
    throttle.failed("bob", "1.1.1.1")
    assert throttle.check("carol", "1.1.1.1") is None  # two failures from this address
    throttle.failed("dave", "1.1.1.1")
    locked = throttle.check("carol", "1.1.1.1")  # now three
    assert locked is not None and locked.retry_after_s <= 60
    throttle.succeeded("alice")
    assert throttle.check("alice", "3.3.3.3") is None


def test_unreachable_redis_leaves_sign_in_open():
    dead = RedisFailureStore(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    assert dead.add("k", 60) == 0
    assert dead.count("k") == (0, 0.0)
