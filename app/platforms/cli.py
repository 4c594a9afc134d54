"""`flask platforms ...`: approve platforms and manage their API tokens."""

from __future__ import annotations

import click

from app.cli import click_error
from app.errors import AppError
from app.extensions import db
from app.platforms import bp, service
from app.platforms.models import PlatformStatus


@bp.cli.command("create")
@click.argument("name")
@click.option("--contact-name", default="")
@click.option("--contact-phone", default="")
@click.option("--contact-email", default="")
def create(name: str, contact_name: str, contact_phone: str, contact_email: str) -> None:
    """Create an active platform; the last line printed is its new API token (shown once)."""
    try:
        platform = service.create(
            name,
            contact_name=contact_name,
            contact_phone=contact_phone,
            contact_email=contact_email,
        )
        token, row = service.issue_token(platform, label="created with the CLI")
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"platform {platform.id} {platform.name!r} created (active)")
    click.echo(
        f"token {row.id} expires {row.expires_at:%Y-%m-%d}; store it now, it is not shown again:"
    )
    click.echo(token)


@bp.cli.command("list")
def list_platforms() -> None:
    """List platforms with their status."""
    for platform in service.all_platforms():
        click.echo(f"{platform.id}\t{platform.status.value}\t{platform.name}")


@bp.cli.command("token")
@click.argument("name")
@click.option("--label", required=True, help="What the token is for (1 to 100 characters).")
def new_token(name: str, label: str) -> None:
    """Issue another API token for a platform; printed once, as the last line."""
    try:
        platform = service.by_name(name)
        token, row = service.issue_token(platform, label=label)
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"token {row.id} expires {row.expires_at:%Y-%m-%d}:")
    click.echo(token)


@bp.cli.command("tokens")
@click.argument("name")
def list_tokens(name: str) -> None:
    """List a platform's tokens (their first characters only)."""
    try:
        rows = service.tokens(service.by_name(name))
    except AppError as error:
        raise click_error(error) from None
    for row in rows:
        state = "revoked" if row.revoked_at else f"expires {row.expires_at:%Y-%m-%d}"
        used = f"used {row.last_used_at:%Y-%m-%d %H:%M} UTC" if row.last_used_at else "never used"
        click.echo(f"{row.id}\t{row.prefix}…\t{state}\t{used}\t{row.label}")


@bp.cli.command("revoke")
@click.argument("name")
@click.argument("token_id", type=int)
def revoke(name: str, token_id: int) -> None:
    """Revoke one token of a platform by its id."""
    try:
        platform = service.by_name(name)
        service.revoke_token(platform, token_id)
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"token {token_id} revoked")


@bp.cli.command("suspend")
@click.argument("name")
def suspend(name: str) -> None:
    """Suspend a platform: all its tokens stop working until it is activated."""
    _set(name, PlatformStatus.SUSPENDED)


@bp.cli.command("activate")
@click.argument("name")
def activate(name: str) -> None:
    """Activate a suspended platform."""
    _set(name, PlatformStatus.ACTIVE)


def _set(name: str, status: PlatformStatus) -> None:
    try:
        service.set_status(service.by_name(name), status)
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"platform {name!r} is {status.value}")
