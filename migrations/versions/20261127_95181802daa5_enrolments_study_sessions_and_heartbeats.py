"""enrolments, study sessions and heartbeats

Revision ID: 95181802daa5
Revises: 3c98e0d4bd54
Create Date: 2026-11-27 10:10:20.675625

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '95181802daa5'
down_revision = '3c98e0d4bd54'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('enrollment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trainee_id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_enrollment_course_id_course')),
    sa.ForeignKeyConstraint(['trainee_id'], ['user.id'], name=op.f('fk_enrollment_trainee_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollment')),
    sa.UniqueConstraint('trainee_id', 'course_id', name='uq_enrollment_once')
    )
    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrollment_course_id'), ['course_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrollment_trainee_id'), ['trainee_id'], unique=False)

    op.create_table('lesson_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('lesson_id', sa.Integer(), nullable=False),
    sa.Column('credited_s', sa.Double(), nullable=False),
    sa.Column('furthest_s', sa.Double(), nullable=False),
    sa.Column('position_s', sa.Double(), nullable=False),
    sa.Column('covered', sa.Text(), nullable=False),
    sa.Column('coverage', sa.Double(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_lesson_progress_enrollment_id_enrollment')),
    sa.ForeignKeyConstraint(['lesson_id'], ['lesson.id'], name=op.f('fk_lesson_progress_lesson_id_lesson')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesson_progress')),
    sa.UniqueConstraint('enrollment_id', 'lesson_id', name='uq_lesson_progress_lesson')
    )
    op.create_table('study_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('lesson_id', sa.Integer(), nullable=False),
    sa.Column('trainee_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.Enum('superseded', 'closed', name='sessionend', native_enum=False, length=20), nullable=True),
    sa.Column('last_at', sa.Double(), nullable=True),
    sa.Column('last_position_s', sa.Double(), nullable=True),
    sa.Column('last_active', sa.Boolean(), nullable=False),
    sa.Column('credited_s', sa.Double(), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_study_session_enrollment_id_enrollment')),
    sa.ForeignKeyConstraint(['lesson_id'], ['lesson.id'], name=op.f('fk_study_session_lesson_id_lesson')),
    sa.ForeignKeyConstraint(['trainee_id'], ['user.id'], name=op.f('fk_study_session_trainee_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_session'))
    )
    with op.batch_alter_table('study_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_session_enrollment_id'), ['enrollment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_study_session_trainee_id'), ['trainee_id'], unique=False)

    op.create_table('heartbeat',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.Column('position_s', sa.Double(), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('playing', sa.Boolean(), nullable=False),
    sa.Column('credited_s', sa.Double(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['study_session.id'], name=op.f('fk_heartbeat_session_id_study_session')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_heartbeat'))
    )
    with op.batch_alter_table('heartbeat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_heartbeat_session_id'), ['session_id'], unique=False)



def downgrade():
    with op.batch_alter_table('heartbeat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_heartbeat_session_id'))

    op.drop_table('heartbeat')
    with op.batch_alter_table('study_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_session_trainee_id'))
        batch_op.drop_index(batch_op.f('ix_study_session_enrollment_id'))

    op.drop_table('study_session')
    op.drop_table('lesson_progress')
    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrollment_trainee_id'))
        batch_op.drop_index(batch_op.f('ix_enrollment_course_id'))

    op.drop_table('enrollment')
