"""Sign-in throttling: count failures per account and per address, refuse while over the limit.

Counts live in Redis when REDIS_URL is set (shared by every worker process) and in process
memory otherwise (the embedded single-process default). Each failure pushes the expiry of
its counter to LOGIN_LOCKOUT_S from now, so a lock lasts that long after the last failure.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis

log = logging.getLogger(__name__)


class FailureStore(Protocol):
    def count(self, key: str) -> tuple[int, float]:
        """The failures recorded under key and the seconds until they expire."""
        ...

    def add(self, key: str, ttl_s: int) -> int: ...

    def reset(self, key: str) -> None: ...


class MemoryFailureStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, float]] = {}

    def _live(self, key: str, now: float) -> tuple[int, float]:
        count, expires = self._entries.get(key, (0, 0.0))
        if expires <= now:
            self._entries.pop(key, None)
            return 0, 0.0
        return count, expires

    def count(self, key: str) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            count, expires = self._live(key, now)
            return count, max(0.0, expires - now)

    def add(self, key: str, ttl_s: int) -> int:
        now = time.monotonic()
        with self._lock:
            count, _ = self._live(key, now)
            self._entries[key] = (count + 1, now + ttl_s)
            return count + 1

    def reset(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class RedisFailureStore:
    """Shared counters. If Redis is unreachable, sign-in stays open and the outage is logged."""

    def __init__(self, client: redis.Redis, prefix: str = "veriskill:login:") -> None:
        self.client = client
        self.prefix = prefix

    def count(self, key: str) -> tuple[int, float]:
        try:
            with self.client.pipeline() as pipe:
                raw, ttl = pipe.get(self.prefix + key).pttl(self.prefix + key).execute()
        except redis.RedisError:
            log.exception("sign-in throttle: Redis unavailable, not limiting")
            return 0, 0.0
        return int(raw or 0), max(0.0, (ttl or 0) / 1000)

    def add(self, key: str, ttl_s: int) -> int:
        try:
            with self.client.pipeline() as pipe:
                count, _ = pipe.incr(self.prefix + key).expire(self.prefix + key, ttl_s).execute()
        except redis.RedisError:
            log.exception("sign-in throttle: Redis unavailable, failure not counted")
            return 0
        return int(count)

    def reset(self, key: str) -> None:
        try:
            self.client.delete(self.prefix + key)
        except redis.RedisError:
            log.exception("sign-in throttle: Redis unavailable, counter not reset")


@dataclass
class Lockout:
    retry_after_s: int


class LoginThrottle:
    def __init__(
        self, store: FailureStore, *, max_per_account: int, max_per_address: int, lockout_s: int
    ) -> None:
        self.store = store
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.lockout_s = lockout_s

    def _keys(self, account: str, address: str) -> list[tuple[str, int]]:
        return [
            (f"acct:{account}", self.max_per_account),
            (f"addr:{address}", self.max_per_address),
        ]

    def check(self, account: str, address: str) -> Lockout | None:
        """A lockout if either the account or the address has failed too often."""
        for key, limit in self._keys(account, address):
            count, remaining_s = self.store.count(key)
            if count >= limit:
                return Lockout(retry_after_s=max(1, round(remaining_s)))
        return None

    def failed(self, account: str, address: str) -> None:
        for key, _ in self._keys(account, address):
            self.store.add(key, self.lockout_s)

    def succeeded(self, account: str) -> None:
        self.store.reset(f"acct:{account}")
