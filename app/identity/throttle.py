"""Sign-in, registration and SMS-code throttling, and the short-lived captcha answers that go
with it.

Every attempt is counted (one atomic increment) BEFORE the password is looked at, so however
many requests arrive at once, no more than the limit are ever checked. Two counters:

- per client address: past LOGIN_MAX_FAILURES_PER_ADDRESS the address is locked outright for
  LOGIN_LOCKOUT_S after its last attempt;
- per account (a keyed digest of the login, whether or not such an account exists): past
  LOGIN_MAX_FAILURES each further attempt needs a solved captcha. The account itself is never
  locked, so an outsider who knows a trainee's ID number cannot shut the trainee out.

A successful sign-in resets the account's counter and gives its attempt back to the address.

Counts live in Redis when REDIS_URL is set (shared by every worker process) and in process
memory otherwise (the embedded single-process default). When Redis cannot be reached the
Redis store falls back to its own in-process counters: throttling never switches off.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis

log = logging.getLogger(__name__)

# The in-process store forgets expired entries once it holds this many.
MEMORY_SWEEP_AT = 10_000
# Redis outages are logged at most this often (seconds), not once per request.
OUTAGE_LOG_EVERY_S = 60.0


class FailureStore(Protocol):
    def count(self, key: str) -> tuple[int, float]:
        """The attempts recorded under key and the seconds until they expire."""
        ...

    def add(self, key: str, ttl_s: int) -> int:
        """Count one more, atomically; the count then expires ttl_s from now."""
        ...

    def give_back(self, key: str) -> None:
        """Take one back (never below zero), leaving the expiry as it is."""
        ...

    def reset(self, key: str) -> None: ...

    def put(self, key: str, value: str, ttl_s: int) -> None: ...

    def get(self, key: str) -> str | None: ...

    def take(self, key: str) -> str | None:
        """The value and its removal, atomically: a second take gets None."""
        ...


class MemoryFailureStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int | str, float]] = {}

    def _live(self, key: str, now: float) -> tuple[int | str, float] | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] <= now:
            self._entries.pop(key, None)
            return None
        return entry

    def _sweep(self, now: float) -> None:
        if len(self._entries) >= MEMORY_SWEEP_AT:
            for key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
                del self._entries[key]

    def count(self, key: str) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            entry = self._live(key, now)
            if entry is None or not isinstance(entry[0], int):
                return 0, 0.0
            return entry[0], max(0.0, entry[1] - now)

    def add(self, key: str, ttl_s: int) -> int:
        now = time.monotonic()
        with self._lock:
            self._sweep(now)
            entry = self._live(key, now)
            count = entry[0] if entry and isinstance(entry[0], int) else 0
            self._entries[key] = (count + 1, now + ttl_s)
            return count + 1

    def give_back(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._live(key, now)
            if entry and isinstance(entry[0], int):
                if entry[0] <= 1:
                    del self._entries[key]
                else:
                    self._entries[key] = (entry[0] - 1, entry[1])

    def reset(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def put(self, key: str, value: str, ttl_s: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._sweep(now)
            self._entries[key] = (value, now + ttl_s)

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._live(key, time.monotonic())
            return entry[0] if entry and isinstance(entry[0], str) else None

    def take(self, key: str) -> str | None:
        with self._lock:
            entry = self._live(key, time.monotonic())
            self._entries.pop(key, None)
            return entry[0] if entry and isinstance(entry[0], str) else None


class RedisFailureStore:
    """Shared counters; while Redis is unreachable, counters of this process (fail closed)."""

    def __init__(self, client: redis.Redis, prefix: str = "veriskill:login:") -> None:
        self.client = client
        self.prefix = prefix
        self.fallback = MemoryFailureStore()
        self._last_outage_log = 0.0

    def _outage(self, what: str) -> None:
        now = time.monotonic()
        if now - self._last_outage_log >= OUTAGE_LOG_EVERY_S:
            self._last_outage_log = now
            log.error("sign-in throttle: Redis unavailable (%s); counting in this process", what)

    def count(self, key: str) -> tuple[int, float]:
        try:
            with self.client.pipeline() as pipe:
                pipe.get(self.prefix + key)
                pipe.pttl(self.prefix + key)
                raw, ttl = pipe.execute()
        except redis.RedisError:
            self._outage("count")
            return self.fallback.count(key)
        return int(raw or 0), max(0.0, (ttl or 0) / 1000)

    def add(self, key: str, ttl_s: int) -> int:
        try:
            # A MULTI/EXEC transaction: the increment and its expiry happen together.
            with self.client.pipeline() as pipe:
                pipe.incr(self.prefix + key)
                pipe.expire(self.prefix + key, ttl_s)
                count, _ = pipe.execute()
        except redis.RedisError:
            self._outage("add")
            return self.fallback.add(key, ttl_s)
        return int(count)

    def give_back(self, key: str) -> None:
        try:
            if int(self.client.decr(self.prefix + key)) <= 0:
                self.client.delete(self.prefix + key)
        except redis.RedisError:
            self._outage("give back")
            self.fallback.give_back(key)

    def reset(self, key: str) -> None:
        self.fallback.reset(key)
        try:
            self.client.delete(self.prefix + key)
        except redis.RedisError:
            self._outage("reset")

    def put(self, key: str, value: str, ttl_s: int) -> None:
        try:
            self.client.set(self.prefix + key, value, ex=ttl_s)
        except redis.RedisError:
            self._outage("put")
            self.fallback.put(key, value, ttl_s)

    def get(self, key: str) -> str | None:
        try:
            raw = self.client.get(self.prefix + key)
        except redis.RedisError:
            self._outage("get")
            return self.fallback.get(key)
        return raw.decode() if isinstance(raw, bytes) else raw or self.fallback.get(key)

    def take(self, key: str) -> str | None:
        try:
            with self.client.pipeline() as pipe:
                pipe.get(self.prefix + key)
                pipe.delete(self.prefix + key)
                raw, _ = pipe.execute()
        except redis.RedisError:
            self._outage("take")
            return self.fallback.take(key)
        if raw is None:
            return self.fallback.take(key)  # put while Redis was down
        return raw.decode() if isinstance(raw, bytes) else raw


@dataclass
class Lockout:
    retry_after_s: int


@dataclass(frozen=True)
class Attempt:
    """What the counters say about one sign-in attempt, counted before any password check."""

    locked: Lockout | None = None  # the address is locked: refuse outright
    needs_captcha: bool = False  # the account failed too often: only with a solved captcha
    address_count: int = 0
    account_count: int = 0


class LoginThrottle:
    def __init__(
        self,
        store: FailureStore,
        *,
        max_per_account: int,
        max_per_address: int,
        lockout_s: int,
    ) -> None:
        self.store = store
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.lockout_s = lockout_s

    def attempt(self, account: str, address: str) -> Attempt:
        """Count this attempt on the address, then on the account, and say how to treat it."""
        address_count = self.store.add(f"addr:{address}", self.lockout_s)
        if address_count > self.max_per_address:
            _, remaining_s = self.store.count(f"addr:{address}")
            return Attempt(
                locked=Lockout(retry_after_s=max(1, round(remaining_s or self.lockout_s))),
                address_count=address_count,
            )
        account_count = self.store.add(f"acct:{account}", self.lockout_s)
        return Attempt(
            needs_captcha=account_count > self.max_per_account,
            address_count=address_count,
            account_count=account_count,
        )

    def succeeded(self, account: str, address: str) -> None:
        """A right password: the account starts afresh and the address gets its attempt back."""
        self.store.reset(f"acct:{account}")
        self.store.give_back(f"addr:{address}")

    def register_attempt(self, address: str, *, limit: int, window_s: int) -> Lockout | None:
        """Count one registration from address; a lockout once it has made too many."""
        return self.window_attempt(f"reg:{address}", limit=limit, window_s=window_s)

    def window_attempt(self, key: str, *, limit: int, window_s: int) -> Lockout | None:
        """Count one more under key (SMS codes per phone and per address, registrations); a
        lockout once more than limit were counted within window_s of the latest."""
        if self.store.add(key, window_s) > limit:
            _, remaining_s = self.store.count(key)
            return Lockout(retry_after_s=max(1, round(remaining_s or window_s)))
        return None

    def hold(self, key: str, ttl_s: int) -> Lockout | None:
        """Take key for ttl_s (one SMS per phone per minute): a lockout while it is taken.
        Asking again meanwhile does not push the end back."""
        count, remaining_s = self.store.count(key)
        if count or self.store.add(key, ttl_s) > 1:
            return Lockout(retry_after_s=max(1, round(remaining_s or ttl_s)))
        return None

    # Captchas: the expected answer is kept server-side, used once, for a few minutes.
    def keep_captcha(self, captcha_id: str, answer: str, ttl_s: int) -> None:
        self.store.put(f"captcha:{captcha_id}", answer, ttl_s)

    def captcha_text(self, captcha_id: str) -> str | None:
        return self.store.get(f"captcha:{captcha_id}")

    def use_captcha(self, captcha_id: str) -> str | None:
        return self.store.take(f"captcha:{captcha_id}")
