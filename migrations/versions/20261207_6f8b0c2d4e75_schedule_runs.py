"""schedule runs: every periodic task's run recorded with its outcome, and the live timers

`job_schedule_run` keeps each run (start, end, outcome, error, what it handled, who ran it),
pruned to the newest runs per task by the schedule itself; `job_schedule` gains the last
outcome; `job_schedule_timer` holds each timer's heartbeat, so an operator sees whether any
timer is alive. `job` gains `request_id`: the id of the request that queued the job, which
the worker's log lines carry while it runs.

Revision ID: 6f8b0c2d4e75
Revises: 5e7a9b1c3d64
Create Date: 2026-12-07 23:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "6f8b0c2d4e75"
down_revision = "5e7a9b1c3d64"
branch_labels = None
depends_on = None

OUTCOME = sa.Enum("running", "ok", "failed", name="runoutcome", native_enum=False, length=20)


def upgrade():
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("job_schedule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_outcome", OUTCOME, nullable=True))
    op.create_table(
        "job_schedule_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("run_by", sa.String(length=120), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", OUTCOME, nullable=False),
        sa.Column("items", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_schedule_run")),
    )
    with op.batch_alter_table("job_schedule_run", schema=None) as batch_op:
        batch_op.create_index("ix_job_schedule_run_name_id", ["name", "id"], unique=False)
    op.create_table(
        "job_schedule_timer",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_schedule_timer")),
    )


def downgrade():
    op.drop_table("job_schedule_timer")
    with op.batch_alter_table("job_schedule_run", schema=None) as batch_op:
        batch_op.drop_index("ix_job_schedule_run_name_id")
    op.drop_table("job_schedule_run")
    with op.batch_alter_table("job_schedule", schema=None) as batch_op:
        batch_op.drop_column("last_outcome")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("request_id")
