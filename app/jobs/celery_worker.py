"""Entry point for Celery workers: `celery -A app.jobs.celery_worker worker --concurrency 2`.

On start the worker puts back in the queue the jobs of workers that died, and sends them out.
"""

from __future__ import annotations

from celery.signals import worker_ready

from app import create_app
from app.jobs import service

flask_app = create_app()
celery = flask_app.extensions["veriskill.jobs"].celery


@worker_ready.connect
def recover_jobs(**_: object) -> None:
    with flask_app.app_context():
        for job_id in service.requeue_stale():
            service.dispatch(job_id)
