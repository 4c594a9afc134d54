"""`flask catalog load`: bring the occupational classification into the database."""

from __future__ import annotations

from pathlib import Path

import click

from app.catalog import bp, service
from app.extensions import db

bp.cli.short_help = "Manage the occupational classification."


@bp.cli.command("load")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=service.DATA_FILE,
    show_default=True,
)
def load(path: Path) -> None:
    """Load or refresh the occupation tree; safe to run again."""
    result = service.load(path)
    db.session.commit()
    levels = service.counts_by_level()
    click.echo(
        f"catalog: {result.added} added, {result.updated} updated, {result.unchanged} unchanged; "
        f"{levels.get(1, 0)} major, {levels.get(2, 0)} medium, {levels.get(3, 0)} minor, "
        f"{levels.get(4, 0)} detailed"
    )
