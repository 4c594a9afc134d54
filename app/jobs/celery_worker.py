"""Entry point for Celery workers: `celery -A app.jobs.celery_worker worker --concurrency 2`.

On start the worker puts back in the queue the jobs of workers that died, and sends them out;
while it runs, a timer thread in its main process runs the periodic tasks (`app.jobs.schedule`:
the jobs sweeper and the others), sharing each turn with every other worker through the
database. Each pool child opens its own database connections and keeps its temporary files in
a folder of its own, which the sweeper removes once the child is gone.
"""

from __future__ import annotations

from typing import Any

from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from app import create_app
from app.extensions import db
from app.jobs import schedule, service
from app.observability import logs, metrics, procdir

flask_app = create_app()
celery = flask_app.extensions["veriskill.jobs"].celery
_timer: list[schedule.Timer] = []


@setup_logging.connect
def keep_app_logging(**_: Any) -> None:
    """Celery leaves the root logger to us: the app's format (LOG_FORMAT), job context and all."""
    logs.configure(flask_app.config["LOG_FORMAT"], flask_app.config["LOG_LEVEL"])


@worker_init.connect
def serve_metrics(**_: Any) -> None:
    """Before the pool starts: a fresh PROMETHEUS_MULTIPROC_DIR, and the metrics listener."""
    procdir.wipe_at_start()
    metrics.serve_worker_metrics(flask_app)


@worker_process_init.connect
def fresh_child(**_: Any) -> None:
    """A forked pool child: never share the parent's database connections; its own scratch."""
    with flask_app.app_context():
        db.engine.dispose(close=False)
    service.use_scratch_dir()


@worker_ready.connect
def recover_jobs(**_: Any) -> None:
    with flask_app.app_context():
        service.use_scratch_dir()  # the solo pool runs tasks in this process
        for job_id in service.requeue_stale():
            service.dispatch(job_id)
        service.remove_dead_scratch()
        db.session.remove()
    timer = schedule.Timer(flask_app)
    timer.start()
    _timer.append(timer)


@worker_shutdown.connect
def stop_timer(**_: Any) -> None:
    for timer in _timer:
        timer.stopped.set()
