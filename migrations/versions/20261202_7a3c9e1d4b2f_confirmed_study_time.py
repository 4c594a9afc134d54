"""study time: one open session per trainee, heartbeats counted once, time awaiting a check

Revision ID: 7a3c9e1d4b2f
Revises: 5e1f0a9c2b7d
Create Date: 2026-12-02 00:00:00.000000

Completion and money now count only time a passed face check confirmed. Time credited since a
session's last passed check was counted before; it becomes ``pending_s``, waiting for the
session's next check (or lapsing when the session ends). Sessions left open beside a newer one
of the same trainee are closed as superseded before the unique index over open sessions is made.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7a3c9e1d4b2f'
down_revision = '5e1f0a9c2b7d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('study_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_at', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('last_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('credited_spans', sa.Text(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('lapsed_s', sa.Double(), nullable=False, server_default='0'))
    with op.batch_alter_table('heartbeat', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
    with op.batch_alter_table('lesson_progress', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_s', sa.Double(), nullable=False, server_default='0'))
    op.execute(
        "UPDATE study_session SET ended_at = started_at, end_reason = 'superseded' "
        "WHERE ended_at IS NULL AND EXISTS (SELECT 1 FROM study_session newer "
        "WHERE newer.trainee_id = study_session.trainee_id AND newer.ended_at IS NULL "
        "AND newer.id > study_session.id)"
    )
    op.execute(
        "UPDATE lesson_progress SET pending_s = COALESCE((SELECT SUM(s.unverified_s) "
        "FROM study_session s WHERE s.enrollment_id = lesson_progress.enrollment_id "
        "AND s.lesson_id = lesson_progress.lesson_id), 0)"
    )
    with op.batch_alter_table('study_session', schema=None) as batch_op:
        batch_op.alter_column('lapsed_s', server_default=None)
        batch_op.alter_column('credited_spans', server_default=None)
        batch_op.create_index('uq_study_session_one_open', ['trainee_id'], unique=True, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
    with op.batch_alter_table('lesson_progress', schema=None) as batch_op:
        batch_op.alter_column('pending_s', server_default=None)


def downgrade():
    with op.batch_alter_table('heartbeat', schema=None) as batch_op:
        batch_op.drop_column('seq')
    with op.batch_alter_table('lesson_progress', schema=None) as batch_op:
        batch_op.drop_column('pending_s')
    with op.batch_alter_table('study_session', schema=None) as batch_op:
        batch_op.drop_index('uq_study_session_one_open', sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.drop_column('lapsed_s')
        batch_op.drop_column('credited_spans')
        batch_op.drop_column('last_seq')
        batch_op.drop_column('opened_at')
