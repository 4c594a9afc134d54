"""`flask courses ...`: the review decisions, from the command line."""

from __future__ import annotations

import click

from app.cli import click_error
from app.courses import bp, service
from app.errors import AppError
from app.extensions import db


def _decide(course_id: int, action, *args: str) -> None:
    try:
        course = service.get_course(course_id)
        action(course, *args)
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"course {course.id} is {course.status.value}")


@bp.cli.command("publish")
@click.argument("course_id", type=int)
def publish(course_id: int) -> None:
    """Publish a course that is in review."""
    _decide(course_id, service.publish)


@bp.cli.command("reject")
@click.argument("course_id", type=int)
@click.option("--reason", required=True, help="Shown to the platform so it can fix the course.")
def reject(course_id: int, reason: str) -> None:
    """Reject a course that is in review, saying why."""
    _decide(course_id, service.reject, reason)


@bp.cli.command("withdraw")
@click.argument("course_id", type=int)
def withdraw(course_id: int) -> None:
    """Withdraw a published course."""
    _decide(course_id, service.withdraw)
