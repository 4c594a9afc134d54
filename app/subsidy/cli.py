"""`flask subsidy rebuild-queue`: recompute every row of the auditors' queue from the facts."""

from __future__ import annotations

import click

from app.extensions import db
from app.subsidy import bp, queue, service

bp.cli.short_help = "Maintain the auditors' queue."


@bp.cli.command("rebuild-queue")
@click.option("--batch", default=queue.REBUILD_BATCH, show_default=True, type=click.IntRange(1))
def rebuild_queue(batch: int) -> None:
    """Recompute the queue row of every enrolment, a committed batch at a time.

    Run after a deploy that changes the subsidy rules or REJECTION_NEEDS_SECOND_AUDITOR, or to
    repair; safe to stop and run again. Prints the enrolments done after each batch.
    """
    done = 0
    for done in service.rebuild_queue(batch):
        db.session.commit()
        click.echo(f"{done} enrolments")
    click.echo(f"queue rebuilt: {done} enrolments, {service.queue_size()} waiting for review")
