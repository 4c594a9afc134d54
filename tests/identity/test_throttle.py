"""Failure counters behind sign-in throttling, in memory and in a real Redis."""

import time
import uuid

import pytest
import redis

from app.identity.throttle import Attempt, LoginThrottle, MemoryFailureStore, RedisFailureStore
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


def test_give_back_and_values_taken_once(store):
    store.add("k", 60)
    store.add("k", 60)
    store.give_back("k")
    assert store.count("k")[0] == 1
    store.give_back("k")
    store.give_back("k")  # never below zero
    assert store.count("k")[0] == 0
    store.put("c", "AB3K7", 60)
    assert store.get("c") == "AB3K7"
    assert store.take("c") == "AB3K7"
    assert store.take("c") is None and store.get("c") is None


def test_address_is_locked_but_the_account_only_asks_for_a_captcha(store):
    throttle = LoginThrottle(store, max_per_account=2, max_per_address=3, lockout_s=60)
    assert throttle.attempt("alice", "1.1.1.1") == Attempt(address_count=1, account_count=1)
    assert not throttle.attempt("alice", "2.2.2.2").needs_captcha
    third = throttle.attempt("alice", "3.3.3.3")  # from anywhere: a captcha, never a lock
    assert third.needs_captcha and third.locked is None
    throttle.attempt("bob", "1.1.1.1")
    throttle.attempt("carol", "1.1.1.1")  # the third attempt from this address
    locked = throttle.attempt("dave", "1.1.1.1")
    assert locked.locked is not None and 0 < locked.locked.retry_after_s <= 60
    assert throttle.attempt("dave", "4.4.4.4").locked is None  # the account was not counted
    throttle.succeeded("alice", "3.3.3.3")
    assert not throttle.attempt("alice", "3.3.3.3").needs_captcha


def test_unreachable_redis_falls_back_to_counting_in_this_process():
    dead = RedisFailureStore(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    assert dead.add("k", 60) == 1
    assert dead.add("k", 60) == 2
    assert dead.count("k")[0] == 2
    dead.put("c", "X", 60)
    assert dead.take("c") == "X"
    throttle = LoginThrottle(dead, max_per_account=1, max_per_address=2, lockout_s=60)
    throttle.attempt("alice", "1.1.1.1")
    assert throttle.attempt("alice", "1.1.1.1").needs_captcha
    assert throttle.attempt("bob", "1.1.1.1").locked is not None
