"""Heartbeat hot path: a study session knows whether a face check waits for its answer

The heartbeat used to look up the session's latest check on every beat to learn whether one
was pending. `study_session.awaiting_check` says so from the row the heartbeat already locks.
Open sessions whose latest check is still pending start with it set.

Revision ID: 4d6f8a0b2c53
Revises: 3b5d7f9a1c42
Create Date: 2026-12-07 23:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "4d6f8a0b2c53"
down_revision = "3b5d7f9a1c42"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("study_session") as batch_op:
        batch_op.add_column(
            sa.Column("awaiting_check", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    session = sa.table(
        "study_session",
        sa.column("id"),
        sa.column("ended_at"),
        sa.column("awaiting_check", sa.Boolean),
    )
    check = sa.table("face_check", sa.column("session_id"), sa.column("status"))
    pending = sa.exists().where(check.c.session_id == session.c.id, check.c.status == "pending")
    op.execute(
        sa.update(session).where(session.c.ended_at.is_(None), pending).values(awaiting_check=True)
    )


def downgrade():
    with op.batch_alter_table("study_session") as batch_op:
        batch_op.drop_column("awaiting_check")
