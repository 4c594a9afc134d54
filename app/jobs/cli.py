"""`flask jobs ...`: run a polling worker, list and recover jobs."""

from __future__ import annotations

import signal

import click
import sqlalchemy as sa
from flask import current_app

from app.extensions import db, real_app
from app.jobs import bp, service
from app.jobs.backends import PollingWorker
from app.jobs.models import Job
from app.observability.metrics import serve_worker_metrics


@bp.cli.command("work")
def work() -> None:
    """Run queued jobs until stopped (SIGTERM or Ctrl-C finish the current job first)."""
    worker = PollingWorker(real_app(), current_app.config["JOB_POLL_S"])

    def stop(*_: object) -> None:
        worker.stopped.set()
        worker.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"job worker {service.worker_id()} polling every {worker.poll_s}s")
    serve_worker_metrics(real_app())  # WORKER_METRICS_LISTEN, if set
    worker.run_forever()


@bp.cli.command("list")
@click.option("--limit", default=30, show_default=True)
def list_jobs(limit: int) -> None:
    """The latest jobs with status, attempts, progress and error."""
    for job in db.session.scalars(sa.select(Job).order_by(Job.id.desc()).limit(limit)):
        error = f"{job.error_code}: {job.error_message}" if job.error_code else ""
        click.echo(
            f"{job.id}\t{job.kind}\t{job.subject_id}\t{job.status.value}\t"
            f"attempt {job.attempts}\t{job.progress:.0f}%\t{error}"
        )


@bp.cli.command("recover")
def recover() -> None:
    """Requeue jobs whose worker stopped, and wake workers for every queued job (what the
    sweeper does on its schedule, without waiting for JOB_DISPATCH_GRACE_S)."""
    ids = service.requeue_stale()
    woken = service.dispatch_waiting(grace_s=0)
    click.echo(f"requeued {len(ids)} job(s); woke workers for {len(woken)} queued job(s)")
