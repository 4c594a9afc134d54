"""The Celery application: a task per job id; the job table says what to do."""

from __future__ import annotations

from celery import Celery
from flask import Flask


def make_celery(app: Flask) -> Celery:
    celery = Celery(app.import_name, broker=app.config["REDIS_URL"])
    celery.conf.update(
        task_ignore_result=True,
        # A task is acknowledged only after it ran, and a worker that dies mid-task gives it
        # back; the job row's atomic claim keeps a redelivered task from running twice.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
    )

    @celery.task(name="veriskill.run_job")
    def run_job(job_id: int) -> None:
        from app.jobs import service

        with app.app_context():
            service.run(job_id)

    return celery
