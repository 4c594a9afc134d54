"""`flask stats rollup`: recompute a year's figures from the records by hand."""

from __future__ import annotations

import click

from app.extensions import db
from app.stats import bp, rollup
from app.stats.service import MAX_YEAR, MIN_YEAR
from app.timeutil import today_local

bp.cli.short_help = "The bureau's statistics."


@bp.cli.command("rollup")
@click.option(
    "--year",
    type=click.IntRange(MIN_YEAR, MAX_YEAR),
    default=None,
    help="The year (default: this year).",
)
def rollup_command(year: int | None) -> None:
    """Recompute every figure of a year, per month, district and programme."""
    year = year or today_local().year
    written = rollup.roll_up(year)
    db.session.commit()
    click.echo(f"stats {year}: {written} values written")
