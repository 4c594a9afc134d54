"""Readiness: can this process serve now? The database, Redis, storage and the face model.

Liveness (`/healthz`) only says the process answers; readiness (`/healthz/ready`) says whether
a load balancer should send it traffic. Each check runs on a thread of its own with a deadline
(READY_TIMEOUT_S), so a dependency that hangs costs the probe that long, never more; a check
whose previous run still hangs is reported as such rather than started again, so a dead
dependency never piles up threads.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask

from media_pipeline.storage import LocalStorage, MinioStorage

# One thread per check at most (see the module docstring): five checks, room to spare.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readiness")
_running: dict[tuple[int, str], Future[None]] = {}
_running_lock = threading.Lock()


@dataclass(frozen=True)
class Result:
    """One check: `ok`, `failed` (with a short public reason and the full message for the
    operator) or `skipped` (not configured)."""

    name: str
    status: str
    ms: float | None = None
    reason: str | None = None
    detail: str | None = None

    def json(self, *, detail: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.ms is not None:
            out["ms"] = round(self.ms, 1)
        if self.reason:
            out["reason"] = self.reason
        if detail and self.detail:
            out["detail"] = self.detail
        return out


def check_database(app: Flask) -> None:
    from app.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        conn.execute(sa.select(1))


def check_redis(app: Flask) -> None:
    timeout = app.config["READY_TIMEOUT_S"]
    client = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def check_storage(app: Flask) -> None:
    """Local disk: a file can be written under the root. MinIO/S3: the bucket answers."""
    store = app.extensions["veriskill.storage"]
    if isinstance(store, LocalStorage):
        store.root.mkdir(parents=True, exist_ok=True)  # as a write would
        fd, name = tempfile.mkstemp(prefix=".ready-", dir=store.root)
        os.close(fd)
        os.unlink(name)
    elif isinstance(store, MinioStorage) and not _probe_client(app, store).bucket_exists(
        store.bucket
    ):
        raise RuntimeError(f"bucket {store.bucket!r} does not exist")


def _probe_client(app: Flask, store: MinioStorage) -> Any:
    """A client for the same store with the probe's timeout and no retries (the storage's own
    client retries for minutes, right for uploads, wrong for a probe)."""
    import urllib3
    from minio import Minio

    timeout = app.config["READY_TIMEOUT_S"]
    config = app.config
    return Minio(
        config["MINIO_ENDPOINT"],
        access_key=config["MINIO_ACCESS_KEY"],
        secret_key=config["MINIO_SECRET_KEY"],
        secure=str(config.get("MINIO_SECURE", "true")).lower() in ("1", "true", "yes", "on"),
        region=store.region,
        http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False
        ),
    )


def check_face_model(app: Flask) -> None:
    """Loaded once per process (about half a second the first time), then a look-up: the first
    probe after a start also warms the model for the first face check."""
    from app.verification import service as verification

    with app.app_context():
        verification.model()


CHECKS: dict[str, Callable[[Flask], None]] = {
    "database": check_database,
    "redis": check_redis,
    "storage": check_storage,
    "face_model": check_face_model,
}


def _configured(app: Flask, name: str) -> bool:
    return name != "redis" or bool(app.config.get("REDIS_URL"))


def _start(app: Flask, name: str) -> Future[None] | None:
    """The check's run, or None while its previous run still hangs."""
    key = (id(app), name)
    with _running_lock:
        previous = _running.get(key)
        if previous is not None and not previous.done():
            return None
        future = _pool.submit(CHECKS[name], app)
        _running[key] = future
        return future


def readiness(app: Flask) -> list[Result]:
    """Run every check at once and wait for each at most until READY_TIMEOUT_S from now."""
    # ms: from the probe's start, as the checks run side by side.
    timeout = float(app.config["READY_TIMEOUT_S"])
    started = time.monotonic()
    deadline = started + timeout
    futures = {name: _start(app, name) if _configured(app, name) else None for name in CHECKS}
    results = []
    for name, future in futures.items():
        if not _configured(app, name):
            results.append(Result(name, "skipped", reason="not configured"))
            continue
        if future is None:
            reason = f"previous check still running after {timeout:g} s"
            results.append(Result(name, "failed", reason=reason))
            continue
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            results.append(Result(name, "failed", reason=f"timed out after {timeout:g} s"))
        except Exception as error:
            results.append(
                Result(name, "failed", reason=type(error).__name__, detail=str(error)[:300])
            )
        else:
            results.append(Result(name, "ok", ms=(time.monotonic() - started) * 1000))
    return results
