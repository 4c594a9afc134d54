"""`flask bureau load-districts`: bring the district list into the database."""

from __future__ import annotations

from pathlib import Path

import click

from app.bureau import bp, service
from app.extensions import db

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
