"""face references, checks and evidence

Revision ID: 23052e702023
Revises: 95181802daa5
Create Date: 2026-11-27 10:25:07.202748

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '23052e702023'
down_revision = '95181802daa5'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('evidence_purge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purged', sa.Integer(), nullable=False),
    sa.Column('cutoff', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_purge'))
    )
    op.create_table('identity_flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('other_user_id', sa.Integer(), nullable=True),
    sa.Column('distance', sa.Double(), nullable=True),
    sa.Column('status', sa.Enum('open', 'cleared', 'confirmed', name='flagstatus', native_enum=False, length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['other_user_id'], ['user.id'], name=op.f('fk_identity_flag_other_user_id_user')),
    sa.ForeignKeyConstraint(['resolved_by'], ['user.id'], name=op.f('fk_identity_flag_resolved_by_user')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_identity_flag_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_flag'))
    )
    with op.batch_alter_table('identity_flag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_flag_user_id'), ['user_id'], unique=False)

    op.create_table('face_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('sign_in', 'random', name='checkkind', native_enum=False, length=20), nullable=False),
    sa.Column('challenge', sa.String(length=20), nullable=True),
    sa.Column('status', sa.Enum('pending', 'passed', 'failed', name='checkstatus', native_enum=False, length=20), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=True),
    sa.Column('distance', sa.Double(), nullable=True),
    sa.Column('threshold', sa.Double(), nullable=True),
    sa.Column('position_s', sa.Double(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_s', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['study_session.id'], name=op.f('fk_face_check_session_id_study_session')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_face_check_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_check'))
    )
    with op.batch_alter_table('face_check', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_face_check_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_check_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_check_user_id'), ['user_id'], unique=False)

    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('reference', 'snapshot', name='evidencekind', native_enum=False, length=20), nullable=False),
    sa.Column('check_id', sa.Integer(), nullable=True),
    sa.Column('lesson_id', sa.Integer(), nullable=True),
    sa.Column('position_s', sa.Double(), nullable=True),
    sa.Column('key', sa.String(length=200), nullable=True),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('dhash', sa.String(length=16), nullable=True),
    sa.Column('result', sa.String(length=40), nullable=True),
    sa.Column('distance', sa.Double(), nullable=True),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purge_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['check_id'], ['face_check.id'], name=op.f('fk_evidence_check_id_face_check')),
    sa.ForeignKeyConstraint(['lesson_id'], ['lesson.id'], name=op.f('fk_evidence_lesson_id_lesson')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_evidence_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence'))
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_check_id'), ['check_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_user_id'), ['user_id'], unique=False)

    op.create_table('face_reference',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('active', 'pending_approval', 'replaced', 'rejected', name='facestatus', native_enum=False, length=20), nullable=False),
    sa.Column('encoding_cipher', sa.Text(), nullable=False),
    sa.Column('evidence_id', sa.Integer(), nullable=False),
    sa.Column('face_px', sa.Integer(), nullable=False),
    sa.Column('blur', sa.Double(), nullable=False),
    sa.Column('brightness', sa.Double(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['decided_by'], ['user.id'], name=op.f('fk_face_reference_decided_by_user')),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], name=op.f('fk_face_reference_evidence_id_evidence')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_face_reference_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_reference'))
    )
    with op.batch_alter_table('face_reference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_face_reference_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_reference_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('lesson_progress', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voided_s', sa.Double(), nullable=False, server_default='0'))

    with op.batch_alter_table('study_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unverified_s', sa.Double(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('since_check_s', sa.Double(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_check_after_s', sa.Double(), nullable=False, server_default='0'))



def downgrade():
    with op.batch_alter_table('study_session', schema=None) as batch_op:
        batch_op.drop_column('next_check_after_s')
        batch_op.drop_column('since_check_s')
        batch_op.drop_column('unverified_s')

    with op.batch_alter_table('lesson_progress', schema=None) as batch_op:
        batch_op.drop_column('voided_s')

    with op.batch_alter_table('face_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_reference_user_id'))
        batch_op.drop_index(batch_op.f('ix_face_reference_status'))

    op.drop_table('face_reference')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_user_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_sha256'))
        batch_op.drop_index(batch_op.f('ix_evidence_check_id'))

    op.drop_table('evidence')
    with op.batch_alter_table('face_check', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_check_user_id'))
        batch_op.drop_index(batch_op.f('ix_face_check_status'))
        batch_op.drop_index(batch_op.f('ix_face_check_session_id'))

    op.drop_table('face_check')
    with op.batch_alter_table('identity_flag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_flag_user_id'))

    op.drop_table('identity_flag')
    op.drop_table('evidence_purge')
