"""jobs outbox: when a job's worker was last woken, the schedule's turns, answers by status

The job row is the outbox: `dispatched_at` lets the sweeper wake a worker again for a job whose
wake-up failed or was lost. `job_schedule` holds each periodic task's last run, which every
worker's timer takes by one conditional update. The sweeper looks for answers still queued, so
`check_answer.status` gets an index.

Revision ID: d5f7b9c1e3a4
Revises: c4e6a8b0d2f1
Create Date: 2026-12-07 17:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "d5f7b9c1e3a4"
down_revision = "c4e6a8b0d2f1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "job_schedule",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_by", sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_schedule")),
    )
    with op.batch_alter_table("check_answer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_answer_status"), ["status"], unique=False)


def downgrade():
    with op.batch_alter_table("check_answer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_answer_status"))
    op.drop_table("job_schedule")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("dispatched_at")
