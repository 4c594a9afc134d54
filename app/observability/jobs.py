"""Per job run in a worker: the queuing request's id on its log lines, and its duration."""

from __future__ import annotations

import logging
import time

from app.observability import logs, metrics

log = logging.getLogger("veriskill.job")


class JobRun:
    """One run of a job in a worker (the embedded thread, `flask jobs work`, Celery): while it
    lasts, its id, kind and the id of the request that queued it are on every log line, which
    open and close with a line of their own; `close` also counts the run's duration in
    `veriskill_job_duration_seconds`."""

    def __init__(self, job_id: int, kind: str, request_id: str | None) -> None:
        self.kind = kind
        self.started = time.perf_counter()
        self.token = logs.bind(request_id=request_id, job_id=job_id, job_kind=kind)
        log.info("job started")

    def close(self) -> None:
        seconds = time.perf_counter() - self.started
        log.info("job ended after %.1f s", seconds, extra={"duration_ms": round(seconds * 1000)})
        logs.reset(self.token)
        metrics.job_ran(self.kind, seconds)
