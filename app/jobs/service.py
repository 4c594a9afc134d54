"""Enqueue, claim, run and recover jobs. The rows are the truth; backends only wake workers.

A job is claimed by one atomic UPDATE (queued -> running), so two workers never run it at
once. While it runs a heartbeat thread stamps `heartbeat_at`; a job whose worker died (stale
heartbeat, or a dead pid on this host) is put back in the queue by `requeue_stale`, which
every worker calls when it starts. Handlers must be safe to re-run: a stage that already
finished is skipped or redone into the same place, never duplicated.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from flask import current_app

from app.db import utcnow
from app.extensions import db
from app.jobs.models import Job, JobStatus

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """A permanent failure of the job's input: recorded with its code and never retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Progress(Protocol):
    def __call__(self, percent: float) -> None: ...


@dataclass(frozen=True)
class Handler:
    run: Callable[[int, Progress], None]
    # Called once when the job is given up for good, so the subject can show the failure.
    on_give_up: Callable[[int, str, str], None] | None = None


HANDLERS: dict[str, Handler] = {}


def handler(kind: str, *, on_give_up: Callable[[int, str, str], None] | None = None):
    def register(run: Callable[[int, Progress], None]) -> Callable[[int, Progress], None]:
        HANDLERS[kind] = Handler(run=run, on_give_up=on_give_up)
        return run

    return register


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(kind: str, subject_id: int) -> Job:
    """The unfinished job of this kind for this subject, or a new queued one (flushed).

    Commit, then call `dispatch(job.id)`: a worker must never see a job before it exists.
    """
    existing = db.session.scalar(
        sa.select(Job).where(
            Job.kind == kind,
            Job.subject_id == subject_id,
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
        )
    )
    if existing is not None:
        return existing
    job = Job(kind=kind, subject_id=subject_id)
    db.session.add(job)
    db.session.flush()
    return job


def dispatch(job_id: int) -> None:
    current_app.extensions["veriskill.jobs"].dispatch(job_id)


def latest(kind: str, subject_id: int) -> Job | None:
    return db.session.scalar(
        sa.select(Job)
        .where(Job.kind == kind, Job.subject_id == subject_id)
        .order_by(Job.id.desc())
        .limit(1)
    )


def claim(job_id: int) -> bool:
    """Take a queued job for this worker; False if someone else has it or it is finished."""
    now = utcnow()
    result = db.session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING,
            locked_by=worker_id(),
            heartbeat_at=now,
            started_at=now,
            attempts=Job.attempts + 1,
        )
    )
    db.session.commit()
    return result.rowcount == 1


def claim_next() -> int | None:
    """Claim the oldest queued job, if any."""
    for _ in range(5):  # lose a race to another worker a few times at most
        job_id = db.session.scalar(
            sa.select(Job.id).where(Job.status == JobStatus.QUEUED).order_by(Job.id).limit(1)
        )
        db.session.commit()
        if job_id is None:
            return None
        if claim(job_id):
            return job_id
    return None


def _touch(job_id: int, **values: Any) -> None:
    """Update progress or heartbeat outside the handler's own transaction."""
    with db.engine.begin() as conn:
        conn.execute(sa.update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow(), **values))


class _Heartbeat(threading.Thread):
    def __init__(self, app: Any, job_id: int, every_s: float) -> None:
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.app = app
        self.job_id = job_id
        self.every_s = every_s
        self.stopped = threading.Event()

    def run(self) -> None:
        with self.app.app_context():
            while not self.stopped.wait(self.every_s):
                try:
                    _touch(self.job_id)
                except sa.exc.SQLAlchemyError:
                    log.exception("job %s: heartbeat failed", self.job_id)


def execute(job_id: int) -> None:
    """Run a job this worker has claimed, and record how it ended."""
    job = db.session.get(Job, job_id)
    if job is None or job.status is not JobStatus.RUNNING or job.locked_by != worker_id():
        db.session.rollback()
        return
    kind, subject_id, attempts = job.kind, job.subject_id, job.attempts
    db.session.commit()
    spec = HANDLERS.get(kind)
    heartbeat = _Heartbeat(
        current_app._get_current_object(), job_id, current_app.config["JOB_HEARTBEAT_S"]
    )
    heartbeat.start()
    last_report = [-1.0]

    def report(percent: float) -> None:
        percent = max(0.0, min(100.0, round(percent, 1)))
        if percent - last_report[0] >= 1 or percent == 100:
            last_report[0] = percent
            _touch(job_id, progress=percent)

    try:
        if spec is None:
            raise JobFailed("unknown_job", f"no handler for job kind {kind!r}")
        spec.run(subject_id, report)
    except JobFailed as failure:
        db.session.rollback()
        _finish(job_id, JobStatus.FAILED, failure.code, failure.message)
    except Exception as error:
        db.session.rollback()
        log.exception("job %s (%s %s) attempt %s crashed", job_id, kind, subject_id, attempts)
        if attempts >= current_app.config["JOB_MAX_ATTEMPTS"]:
            message = f"gave up after {attempts} attempts: {error}"[:2000]
            _finish(job_id, JobStatus.FAILED, "processing_error", message)
            if spec and spec.on_give_up:
                spec.on_give_up(subject_id, "processing_error", message)
                db.session.commit()
        else:
            _touch(job_id, status=JobStatus.QUEUED, locked_by=None, error_message=str(error)[:2000])
            dispatch(job_id)
    else:
        _finish(job_id, JobStatus.DONE, None, None, progress=100.0)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
        db.session.remove()


def _finish(
    job_id: int, status: JobStatus, code: str | None, message: str | None, **values: Any
) -> None:
    _touch(
        job_id,
        status=status,
        error_code=code,
        error_message=message,
        finished_at=utcnow(),
        **values,
    )


def run(job_id: int) -> bool:
    """Claim and execute one job; what a Celery task does. False if it was not ours to run."""
    if not claim(job_id):
        return False
    execute(job_id)
    return True


def run_pending() -> int:
    """Run queued jobs until none is left, in this thread; returns how many ran."""
    count = 0
    while (job_id := claim_next()) is not None:
        execute(job_id)
        count += 1
    return count


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def requeue_stale() -> list[int]:
    """Put back in the queue every running job whose worker is gone; returns their ids."""
    stale_before = utcnow() - timedelta(seconds=current_app.config["JOB_STALE_S"])
    host = socket.gethostname()
    requeued = []
    for job in db.session.scalars(sa.select(Job).where(Job.status == JobStatus.RUNNING)):
        owner_host, _, pid = (job.locked_by or "").rpartition(":")
        dead_here = owner_host == host and pid.isdigit() and not _pid_alive(int(pid))
        silent = job.heartbeat_at is None or job.heartbeat_at < stale_before
        if (dead_here and job.locked_by != worker_id()) or silent:
            job.status = JobStatus.QUEUED
            job.locked_by = None
            requeued.append(job.id)
    db.session.commit()
    if requeued:
        log.warning("requeued jobs whose worker stopped: %s", requeued)
    return requeued
