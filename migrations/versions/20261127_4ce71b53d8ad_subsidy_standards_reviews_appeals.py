"""subsidy standards reviews appeals

Revision ID: 4ce71b53d8ad
Revises: c17339f7a6e9
Create Date: 2026-11-27 12:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4ce71b53d8ad'
down_revision = 'c17339f7a6e9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subsidy_standard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occupation_code', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Enum('junior', 'intermediate', 'senior', 'technician', 'senior_technician', name='courselevel', native_enum=False, length=20), nullable=True),
    sa.Column('amount_yuan', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['occupation_code'], ['occupation.code'], name=op.f('fk_subsidy_standard_occupation_code_occupation')),
    sa.ForeignKeyConstraint(['updated_by'], ['user.id'], name=op.f('fk_subsidy_standard_updated_by_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_standard')),
    sa.UniqueConstraint('occupation_code', 'level', name='uq_subsidy_standard_level')
    )
    with op.batch_alter_table('subsidy_standard', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subsidy_standard_occupation_code'), ['occupation_code'], unique=False)

    op.create_table('subsidy_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.Enum('approve', 'reject', 'clear_check', 'eligible', name='action', native_enum=False, length=20), nullable=False),
    sa.Column('check_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('amount_yuan', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['check_id'], ['face_check.id'], name=op.f('fk_subsidy_decision_check_id_face_check')),
    sa.ForeignKeyConstraint(['decided_by'], ['user.id'], name=op.f('fk_subsidy_decision_decided_by_user')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_subsidy_decision_enrollment_id_enrollment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_decision'))
    )
    with op.batch_alter_table('subsidy_decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subsidy_decision_check_id'), ['check_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subsidy_decision_enrollment_id'), ['enrollment_id'], unique=False)

    op.create_table('subsidy_spot_check',
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('selected', sa.Boolean(), nullable=False),
    sa.Column('rate', sa.Double(), nullable=False),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_subsidy_spot_check_enrollment_id_enrollment')),
    sa.PrimaryKeyConstraint('enrollment_id', name=op.f('pk_subsidy_spot_check'))
    )
    op.create_table('subsidy_appeal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('rejection_id', sa.Integer(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_subsidy_appeal_enrollment_id_enrollment')),
    sa.ForeignKeyConstraint(['rejection_id'], ['subsidy_decision.id'], name=op.f('fk_subsidy_appeal_rejection_id_subsidy_decision')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_appeal'))
    )
    with op.batch_alter_table('subsidy_appeal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subsidy_appeal_enrollment_id'), ['enrollment_id'], unique=False)


def downgrade():
    with op.batch_alter_table('subsidy_appeal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subsidy_appeal_enrollment_id'))

    op.drop_table('subsidy_appeal')
    op.drop_table('subsidy_spot_check')
    with op.batch_alter_table('subsidy_decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subsidy_decision_enrollment_id'))
        batch_op.drop_index(batch_op.f('ix_subsidy_decision_check_id'))

    op.drop_table('subsidy_decision')
    with op.batch_alter_table('subsidy_standard', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subsidy_standard_occupation_code'))

    op.drop_table('subsidy_standard')
