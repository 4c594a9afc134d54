"""`flask stats freeze` and `flask stats correct`: monthly reports by hand."""

from __future__ import annotations

import click

from app.audit import service as audit
from app.errors import AppError
from app.extensions import db
from app.stats import bp, reports


def _month(value: str) -> str:
    try:
        return reports.parse_month(value)
    except AppError:
        raise click.BadParameter("give a month such as 2026-03") from None


@bp.cli.command("freeze")
@click.option("--month", "month", default=None, help="YYYY-MM (default: last month).")
def freeze_command(month: str | None) -> None:
    """Freeze a month's figures into its report (nothing happens if it has one)."""
    period = _month(month) if month else reports.previous_month()
    existed = reports.get_first(period) is not None
    report = reports.freeze_month(period, actor_label=audit.CLI_LABEL)
    db.session.commit()
    state = "already frozen" if existed else "frozen"
    click.echo(f"{period} {state}: version {report.version}, sha256 {report.sha256}")


@bp.cli.command("correct")
@click.option("--month", "month", required=True, help="YYYY-MM.")
@click.option("--reason", required=True, help="Why the report is corrected.")
def correct_command(month: str, reason: str) -> None:
    """Write a new version of a frozen month, recomputed from the records now."""
    period = _month(month)
    try:
        report = reports.correct(period, reason, None, actor_label=audit.CLI_LABEL)
    except AppError as error:
        db.session.rollback()
        detail = next(iter((error.fields or {}).values()), error.message)
        raise click.ClickException(str(detail)) from None
    db.session.commit()
    click.echo(f"{period} corrected: version {report.version}, sha256 {report.sha256}")
