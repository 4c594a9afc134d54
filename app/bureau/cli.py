"""`flask bureau load-districts`: bring the district list into the database."""

from __future__ import annotations

from pathlib import Path

import click

from app.bureau import bp, programmes, service
from app.extensions import db
from app.stats.service import MAX_YEAR, MIN_YEAR
from app.timeutil import today_local

bp.cli.short_help = "Manage districts, programmes and targets."


@bp.cli.command("load-districts")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=service.DATA_FILE,
    show_default=True,
)
def load_districts(path: Path) -> None:
    """Load or refresh the districts; safe to run again."""
    result = service.load_districts(path)
    db.session.commit()
    click.echo(
        f"districts: {result.added} added, {result.updated} updated, "
        f"{len(service.districts())} in all"
    )


@bp.cli.command("programmes")
@click.option(
    "--year",
    type=click.IntRange(MIN_YEAR, MAX_YEAR),
    default=None,
    help="The year (default: this year).",
)
def list_programmes(year: int | None) -> None:
    """List a year's special programmes with their targets and budgets."""
    year = year or today_local().year
    rows = programmes.programmes(year)
    if not rows:
        click.echo(f"no programmes for {year}")
        return
    names = {row.id: row.name for row in rows}
    for row in rows:
        name = (
            f"  {row.name} (part of {names.get(row.parent_id, row.parent_id)})"
            if row.parent_id
            else row.name
        )
        click.echo(
            f"{row.id:>5}  {name}  target {row.target_trainings:,}  "
            f"budget {row.budget_yuan:,.2f} yuan"
        )
