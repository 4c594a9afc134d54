"""`flask demo seed`: create demo accounts on an empty database and print how to sign in."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app

from app.demo import bp
from app.extensions import db
from app.identity import service as identity
from app.identity.models import Role, User
from app.timeutil import today_local

# Fixed, documented credentials: demo content exists only in development databases.
DEMO_STAFF = (
    (Role.ADMIN, "demo-admin", "DemoAdmin2026", "演示管理员"),
    (Role.AUDITOR, "demo-auditor", "DemoAudit2026", "演示审核员"),
)
DEMO_TRAINEE = {
    "name": "王小明",
    "id_number": "110105199003071239",
    "phone": "13800138000",
    "password": "DemoTrainee2026",
}


@bp.cli.command("seed")
def seed() -> None:
    """Create the demo accounts if the database has no accounts yet; print the credentials."""
    if not current_app.config["DEMO_CONTENT"]:
        click.echo("demo content is off (DEMO_CONTENT=off or production); nothing created")
        return
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0:
        for role, username, password, name in DEMO_STAFF:
            identity.create_staff(role, username, password, name)
        identity.register_trainee(DEMO_TRAINEE, today=today_local())
        db.session.commit()
        click.echo("demo: accounts created")
    elif identity.find_by_login(DEMO_TRAINEE["id_number"]) is None:
        click.echo("demo: database already has accounts; no demo accounts added")
        return
    click.echo("Demo accounts (development only):")
    for role, username, password, _ in DEMO_STAFF:
        click.echo(f"  {role.value:<8} login {username:<20} password {password}")
    click.echo(
        f"  trainee  login {DEMO_TRAINEE['id_number']:<20} password {DEMO_TRAINEE['password']}"
    )
