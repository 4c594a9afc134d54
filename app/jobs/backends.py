"""How a queued job reaches a worker. The job row is already committed when dispatch is called.

- `thread`: a worker thread inside the web process (the embedded default of `make run`).
- `celery`: a Celery task per job over Redis; run `celery -A app.jobs.celery_worker worker`.
- `external`: nobody is woken; `flask jobs work` processes poll the job table.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from flask import Flask

from app.extensions import db
from app.jobs import schedule, service

log = logging.getLogger(__name__)


class Backend(Protocol):
    def dispatch(self, job_id: int) -> None: ...


# How long a stopping worker waits for its schedule timer (a task running then may take longer;
# its thread is a daemon and ends with the process).
TIMER_STOP_S = 10.0


class PollingWorker:
    """Claims and runs queued jobs one at a time until stopped; wakes early when poked.

    Its own schedule timer (`app.jobs.schedule`) runs the periodic tasks, the sweeper among
    them, on a thread beside it for as long as it runs, so a long transcode does not hold them.
    """

    def __init__(self, app: Flask, poll_s: float) -> None:
        self.app = app
        self.poll_s = poll_s
        self.wake = threading.Event()
        self.stopped = threading.Event()

    def run_forever(self) -> None:
        timer = schedule.Timer(self.app)
        with self.app.app_context():
            service.use_scratch_dir()
            self._requeue_stale()
            timer.start()
            try:
                self._loop()
            finally:
                # Wait for the timer to end its tick and say it is gone: its database
                # connection goes back to the pool before the worker is called stopped.
                timer.stopped.set()
                timer.join(timeout=TIMER_STOP_S)

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                job_id = service.claim_next()
            except Exception:
                log.exception("job worker: could not claim a job")
                db.session.remove()
                job_id = None
            if job_id is not None:
                try:
                    service.execute(job_id)
                except Exception:
                    # Its outcome could not be written (the database is gone): the sweeper
                    # takes the job back once its heartbeat is stale.
                    log.exception("job worker: job %s ended unrecorded", job_id)
                    db.session.remove()
                continue
            self.wake.wait(self.poll_s)
            self.wake.clear()

    def _requeue_stale(self) -> None:
        try:
            service.requeue_stale()
        except Exception:
            log.exception("job worker: could not requeue stale jobs")
            db.session.remove()


class ThreadBackend:
    def __init__(self, app: Flask) -> None:
        self.worker = PollingWorker(app, app.config["JOB_POLL_S"])
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self.worker.run_forever, name="job-worker", daemon=True
                )
                self.thread.start()

    def dispatch(self, job_id: int) -> None:
        self.start()
        self.worker.wake.set()


class ExternalBackend:
    def dispatch(self, job_id: int) -> None:
        """Polling workers will find the job; nothing to wake."""


class CeleryBackend:
    def __init__(self, app: Flask) -> None:
        from app.jobs.celery_app import make_celery

        self.celery = make_celery(app)

    def dispatch(self, job_id: int) -> None:
        self.celery.send_task("veriskill.run_job", args=[job_id])


def make_backend(app: Flask) -> Any:
    name = app.config["JOB_BACKEND"]
    if name == "thread":
        return ThreadBackend(app)
    if name == "celery":
        return CeleryBackend(app)
    if name == "external":
        return ExternalBackend()
    raise ValueError(f"JOB_BACKEND must be thread, celery or external, not {name!r}")
