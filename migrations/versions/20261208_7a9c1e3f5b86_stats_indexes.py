"""statistics: the indexes the roll-up reads by

Each figure is counted per period from the time column its definition names; at a million
enrolments a month's range must be an index range, not a scan of the table.

Revision ID: 7a9c1e3f5b86
Revises: c85c1ef614b3
Create Date: 2026-12-08 02:00:00.000000
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "7a9c1e3f5b86"
down_revision = "c85c1ef614b3"
branch_labels = None
depends_on = None

# (table, column): the index is named ix_<table>_<column>, as the models' naming convention.
INDEXES = (
    ("enrollment", "created_at"),
    ("enrollment", "completed_at"),
    ("study_session", "started_at"),
    ("subsidy_decision", "decided_at"),
    ("face_check", "answered_at"),
    ("certificate", "issued_at"),
)


def upgrade():
    for table, column in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def downgrade():
    for table, column in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
