"""face check answers judged by workers

Revision ID: 3264b4868a93
Revises: 23052e702023
Create Date: 2026-11-27 12:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3264b4868a93'
down_revision = '23052e702023'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('check_answer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('frame_keys', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'judged', 'abandoned', name='answerstatus', native_enum=False, length=20), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('judged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('code', sa.String(length=40), nullable=True),
    sa.Column('distance', sa.Double(), nullable=True),
    sa.Column('retry', sa.Boolean(), nullable=False),
    sa.Column('voided_s', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['check_id'], ['face_check.id'], name=op.f('fk_check_answer_check_id_face_check')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_answer')),
    sa.UniqueConstraint('check_id', 'attempt', name=op.f('uq_check_answer_check_id'))
    )
    with op.batch_alter_table('check_answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_check_answer_check_id'), ['check_id'], unique=False)


def downgrade():
    with op.batch_alter_table('check_answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_answer_check_id'))

    op.drop_table('check_answer')
