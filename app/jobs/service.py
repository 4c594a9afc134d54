"""Enqueue, claim, run and recover jobs. The rows are the truth; backends only wake workers.

The job row is the outbox: it is committed before any worker is woken, and a wake-up that
fails (the broker is down) or is lost only delays the job. A job is claimed by one atomic
UPDATE (queued -> running), so two workers never run it at once, and waking a worker twice
is harmless. While it runs a heartbeat thread stamps `heartbeat_at`. `sweep`, run on a
schedule by every kind of worker (`app.jobs.schedule`), wakes a worker again for jobs queued
longer than JOB_DISPATCH_GRACE_S since their last wake-up, takes back running jobs whose worker
is gone (a dead pid on this host, or no heartbeat for JOB_STALE_S: a pool child that died
while its worker lives) and gives up on a job whose worker died in each of its allowed
attempts (`worker_lost`). Writes of a run are fenced by its attempt number, so a run that was
taken back cannot overwrite the next one's outcome. Handlers must be safe to re-run: a stage
that already finished is skipped or redone into the same place, never duplicated.

Temporary files of job work go to a directory per process (`use_scratch_dir`), which the
sweeper removes once its process is gone.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from flask import current_app

from app.db import rowcount, utcnow
from app.extensions import db, real_app
from app.jobs import schedule
from app.jobs.models import Job, JobStatus
from app.observability import logs
from app.observability.jobs import JobRun
from media_pipeline.storage import LocalStorage

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
    # Attempts before giving up (a crash, or a worker that died); None: JOB_MAX_ATTEMPTS.
    max_attempts: int | None = None


HANDLERS: dict[str, Handler] = {}


def handler(
    kind: str,
    *,
    on_give_up: Callable[[int, str, str], None] | None = None,
    max_attempts: int | None = None,
):
    def register(run: Callable[[int, Progress], None]) -> Callable[[int, Progress], None]:
        HANDLERS[kind] = Handler(run=run, on_give_up=on_give_up, max_attempts=max_attempts)
        return run

    return register


def max_attempts(kind: str) -> int:
    spec = HANDLERS.get(kind)
    if spec is not None and spec.max_attempts is not None:
        return spec.max_attempts
    return int(current_app.config["JOB_MAX_ATTEMPTS"])


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
    job = Job(kind=kind, subject_id=subject_id, request_id=logs.current_request_id())
    db.session.add(job)
    db.session.flush()
    return job


def dispatch(job_id: int) -> bool:
    """Wake a worker for a committed job; False (logged) if the backend could not be reached.

    Never raises: the job is safe in its row, and the sweeper wakes a worker for it again once
    it has been queued for JOB_DISPATCH_GRACE_S, so the caller's answer does not depend on the
    broker being up.
    """
    try:
        current_app.extensions["veriskill.jobs"].dispatch(job_id)
    except Exception as error:
        log.warning("job %s: could not wake a worker (the sweeper will): %s", job_id, error)
        return False
    try:
        with db.engine.begin() as conn:
            conn.execute(sa.update(Job).where(Job.id == job_id).values(dispatched_at=utcnow()))
    except sa.exc.SQLAlchemyError as error:
        log.warning("job %s: dispatched, but not stamped: %s", job_id, error)
    return True


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
    return rowcount(result) == 1


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


def _touch(job_id: int, attempt: int, *, retries: int = 0, **values: Any) -> bool:
    """Update progress, heartbeat or outcome of one run, outside the handler's transaction.

    Only while that run still holds the job (running, same attempt): a run the sweeper took
    back writes nothing. `retries`: try again on a lost connection (the outcome of a run
    matters more than a heartbeat). False when the run no longer holds the job.
    """
    statement = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.attempts == attempt)
        .values(heartbeat_at=utcnow(), **values)
    )
    for remaining in range(retries, -1, -1):
        try:
            with db.engine.begin() as conn:
                return conn.execute(statement).rowcount == 1
        except sa.exc.OperationalError:
            if remaining == 0:
                raise
            time.sleep(0.5)
    return False


class _Heartbeat(threading.Thread):
    def __init__(self, app: Any, job_id: int, attempt: int, every_s: float) -> None:
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.app = app
        self.job_id = job_id
        self.attempt = attempt
        self.every_s = every_s
        self.stopped = threading.Event()

    def run(self) -> None:
        with self.app.app_context():
            while not self.stopped.wait(self.every_s):
                try:
                    _touch(self.job_id, self.attempt)
                except sa.exc.SQLAlchemyError:
                    log.exception("job %s: heartbeat failed", self.job_id)


def execute(job_id: int) -> None:
    """Run a job this worker has claimed, and record how it ended."""
    job = db.session.get(Job, job_id)
    if job is None or job.status is not JobStatus.RUNNING or job.locked_by != worker_id():
        db.session.rollback()
        return
    kind, subject_id, attempts = job.kind, job.subject_id, job.attempts
    run = JobRun(job_id, kind, job.request_id)  # its log lines carry the queuing request's id
    db.session.commit()
    spec = HANDLERS.get(kind)
    heartbeat = _Heartbeat(real_app(), job_id, attempts, current_app.config["JOB_HEARTBEAT_S"])
    heartbeat.start()
    last_report = [-1.0]

    def report(percent: float) -> None:
        percent = max(0.0, min(100.0, round(percent, 1)))
        if percent - last_report[0] >= 1 or percent == 100:
            last_report[0] = percent
            _touch(job_id, attempts, progress=percent)

    try:
        if spec is None:
            raise JobFailed("unknown_job", f"no handler for job kind {kind!r}")
        spec.run(subject_id, report)
    except JobFailed as failure:
        _rollback()
        _finish(job_id, attempts, JobStatus.FAILED, failure.code, failure.message)
    except Exception as error:
        _rollback()
        log.exception("job %s (%s %s) attempt %s crashed", job_id, kind, subject_id, attempts)
        if attempts >= max_attempts(kind):
            message = f"gave up after {attempts} attempts: {error}"[:2000]
            if _finish(job_id, attempts, JobStatus.FAILED, "processing_error", message):
                _give_up(spec, subject_id, "processing_error", message)
        elif _touch(
            job_id,
            attempts,
            retries=3,
            status=JobStatus.QUEUED,
            locked_by=None,
            dispatched_at=None,
            error_message=str(error)[:2000],
        ):
            dispatch(job_id)
    else:
        _finish(job_id, attempts, JobStatus.DONE, None, None, progress=100.0)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
        db.session.remove()
        run.close()


def _rollback() -> None:
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError:
        log.warning("rollback failed (connection lost); the session starts afresh")
        db.session.remove()


def _finish(
    job_id: int,
    attempt: int,
    status: JobStatus,
    code: str | None,
    message: str | None,
    **values: Any,
) -> bool:
    """Record how a run ended; False if it no longer held the job (the sweeper took it back)."""
    return _touch(
        job_id,
        attempt,
        retries=3,
        status=status,
        error_code=code,
        error_message=message,
        finished_at=utcnow(),
        **values,
    )


def _give_up(spec: Handler | None, subject_id: int, code: str, message: str) -> None:
    """Tell the subject its job failed for good (the lesson shows it, the check is freed)."""
    if spec is None or spec.on_give_up is None:
        return
    try:
        spec.on_give_up(subject_id, code, message)
        db.session.commit()
    except Exception:
        log.exception("job for subject %s: giving up could not be recorded", subject_id)
        _rollback()


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


def _owner_gone(locked_by: str | None, host: str) -> bool:
    """The job's worker was a process on this host that no longer exists."""
    owner_host, _, pid = (locked_by or "").rpartition(":")
    return owner_host == host and pid.isdigit() and not _pid_alive(int(pid))


def requeue_stale() -> list[int]:
    """Take back every running job whose worker is gone: a dead pid on this host, or no
    heartbeat for JOB_STALE_S (a pool child that died while its worker lives, another host).
    Each goes back to the queue, or fails with `worker_lost` once its worker died in each of
    its allowed attempts. Returns the ids put back in the queue (dispatch them)."""
    stale_before = utcnow() - timedelta(seconds=current_app.config["JOB_STALE_S"])
    host = socket.gethostname()
    me = worker_id()
    running = db.session.execute(
        sa.select(Job.id, Job.kind, Job.subject_id, Job.attempts, Job.locked_by, Job.heartbeat_at)
        .where(Job.status == JobStatus.RUNNING)
        .order_by(Job.id)
    ).all()
    db.session.commit()
    requeued, lost = [], []
    for job_id, kind, subject_id, attempts, locked_by, heartbeat_at in running:
        dead_here = locked_by != me and _owner_gone(locked_by, host)
        silent = heartbeat_at is None or heartbeat_at < stale_before
        if not (dead_here or silent):
            continue
        # Only the run that was seen: not one that started or finished meanwhile.
        same_run = sa.update(Job).where(
            Job.id == job_id, Job.status == JobStatus.RUNNING, Job.attempts == attempts
        )
        if attempts >= max_attempts(kind):
            message = f"its worker stopped during each of {attempts} attempts"
            taken = db.session.execute(
                same_run.values(
                    status=JobStatus.FAILED,
                    error_code="worker_lost",
                    error_message=message,
                    finished_at=utcnow(),
                )
            )
            db.session.commit()
            if rowcount(taken) == 1:
                lost.append(job_id)
                _give_up(HANDLERS.get(kind), subject_id, "worker_lost", message)
        else:
            taken = db.session.execute(
                same_run.values(status=JobStatus.QUEUED, locked_by=None, dispatched_at=None)
            )
            db.session.commit()
            if rowcount(taken) == 1:
                requeued.append(job_id)
    if requeued:
        log.warning("requeued jobs whose worker stopped: %s", requeued)
    if lost:
        log.error("gave up on jobs whose worker stopped at every attempt: %s", lost)
    return requeued


def dispatch_waiting(grace_s: float | None = None, limit: int = 200) -> list[int]:
    """Wake workers again for jobs queued for `grace_s` (JOB_DISPATCH_GRACE_S) since their last
    wake-up (or since they were written, if it never happened); returns the ids woken."""
    if grace_s is None:
        grace_s = current_app.config["JOB_DISPATCH_GRACE_S"]
    due_before = utcnow() - timedelta(seconds=grace_s)
    waiting = list(
        db.session.scalars(
            sa.select(Job.id)
            .where(
                Job.status == JobStatus.QUEUED,
                sa.func.coalesce(Job.dispatched_at, Job.created_at) <= due_before,
            )
            .order_by(Job.id)
            .limit(limit)
        )
    )
    db.session.commit()
    woken = [job_id for job_id in waiting if dispatch(job_id)]
    if waiting:
        log.info("sweeper woke workers for queued jobs %s (of %s waiting)", woken, waiting)
    return woken


def sweep() -> None:
    """The outbox's sweeper: take back jobs of dead workers, then wake workers for every job
    that waits. Safe in any process at any time; scheduled every JOB_SWEEP_S."""
    for job_id in requeue_stale():
        dispatch(job_id)
    dispatch_waiting()


# --- temporary files of job work ----------------------------------------------------------

SCRATCH_DIR = "veriskill-jobs"
_system_tmp = tempfile.gettempdir()


def scratch_root() -> str:
    return os.path.join(_system_tmp, SCRATCH_DIR)


def use_scratch_dir() -> str:
    """Point this process's temporary files (the transcode's work folder, ffmpeg's...) at a
    folder of its own, `<tmp>/veriskill-jobs/<host>-<pid>`, that the sweeper removes once the
    process is gone: a worker killed mid-transcode leaves nothing behind for long."""
    folder = os.path.join(scratch_root(), f"{socket.gethostname()}-{os.getpid()}")
    if tempfile.tempdir != folder:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        tempfile.tempdir = folder
    return folder


def _temp_roots() -> list[str]:
    """Every folder that holds one subfolder of temporary files per process: the job scratch
    folders, and the local object store's unfinished writes."""
    roots = [scratch_root()]
    store = current_app.extensions.get("veriskill.storage")
    if isinstance(store, LocalStorage):
        roots.append(str(store.temp_root()))
    return roots


def remove_dead_scratch() -> list[str]:
    """Remove the temporary folders of this host's processes that are gone (a worker killed
    mid-transcode or mid-upload), once untouched for JOB_SCRATCH_MAX_AGE_S; returns them."""
    host = socket.gethostname()
    older_than = time.time() - current_app.config["JOB_SCRATCH_MAX_AGE_S"]
    removed = []
    for root in _temp_roots():
        try:
            entries = list(os.scandir(root))
        except FileNotFoundError:
            continue
        for entry in entries:
            owner_host, _, pid = entry.name.rpartition("-")
            if owner_host != host or not pid.isdigit() or _pid_alive(int(pid)):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime > older_than:
                    continue
            except FileNotFoundError:
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    if removed:
        log.warning("removed temporary files of stopped processes: %s", removed)
    return removed


schedule.register("sweep_jobs", "JOB_SWEEP_S", sweep)
# Each host's own folders: in every process, without the database's turn.
schedule.register("remove_dead_scratch", "JOB_SWEEP_S", remove_dead_scratch, local=True)
