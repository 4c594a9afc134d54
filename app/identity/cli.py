"""`flask users ...`: staff accounts from the command line."""

from __future__ import annotations

import click
import sqlalchemy as sa

from app.audit import service as audit
from app.cli import click_error
from app.errors import AppError
from app.extensions import db
from app.identity import bp, service
from app.identity.models import Role, User

bp.cli.short_help = "Manage accounts."


@bp.cli.command("create")
@click.option("--role", type=click.Choice(["auditor", "admin", "district_officer"]), required=True)
@click.option("--district", default=None, help="District code; district officers only.")
@click.option("--username", required=True)
@click.option("--password", required=True, help="At least 8 characters, letters and digits.")
@click.option("--name", default=None, help="Display name; defaults to the username.")
def create(role: str, district: str | None, username: str, password: str, name: str | None) -> None:
    """Create an auditor or admin (city-wide), or a district officer of one district."""
    try:
        user = service.create_staff(Role(role), username, password, name, district)
    except AppError as error:
        raise click_error(error) from None
    audit.record_request(
        "account.create",
        subject_type="user",
        subject_id=user.id,
        detail={
            "role": user.role.value,
            "username": user.username,
            "district": user.district_code,
        },
    )
    db.session.commit()
    click.echo(f"created {user.role.value} {user.username} (id {user.id})")


@bp.cli.command("deactivate")
@click.argument("username")
def deactivate(username: str) -> None:
    """Disable a staff account: its sessions and API tokens stop working at once."""
    try:
        user = service.set_active(username, False)
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"deactivated {user.username}: every session and token ended")


@bp.cli.command("activate")
@click.argument("username")
def activate(username: str) -> None:
    """Enable a disabled staff account again (it signs in afresh; old tokens stay revoked)."""
    try:
        user = service.set_active(username, True)
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"activated {user.username}")


@bp.cli.command("list")
def list_users() -> None:
    """List staff accounts (trainees are many; look them up in the admin pages)."""
    rows = db.session.scalars(sa.select(User).where(User.role != Role.TRAINEE).order_by(User.id))
    for user in rows:
        state = "active" if user.active else "disabled"
        click.echo(f"{user.id}\t{user.role.value}\t{user.username}\t{state}")
