"""face models: the model behind every encoding and check, scores instead of distances

Revision ID: 5e1f0a9c2b7d
Revises: 4ce71b53d8ad
Create Date: 2026-12-01 21:00:00.000000

Every reference stored before this revision was encoded by dlib: it is marked so, and checks
against it go on being judged by dlib until `flask faces reencode` moves it to the configured
model. ``distance`` columns become ``score``: a distance for dlib, a similarity for the ONNX
models, always read with the row's model.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1f0a9c2b7d'
down_revision = '4ce71b53d8ad'
branch_labels = None
depends_on = None

SCORED = ('face_check', 'identity_flag', 'check_answer', 'evidence')


def upgrade():
    with op.batch_alter_table('face_reference', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model', sa.String(length=60), nullable=False, server_default='dlib'))
        batch_op.add_column(sa.Column('encoded_at', sa.DateTime(timezone=True), nullable=True))
    op.execute('UPDATE face_reference SET encoded_at = created_at')
    with op.batch_alter_table('face_reference', schema=None) as batch_op:
        batch_op.alter_column('model', server_default=None)
        batch_op.alter_column('encoded_at', nullable=False)
        batch_op.create_index(batch_op.f('ix_face_reference_model'), ['model'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_reference_encoded_at'), ['encoded_at'], unique=False)
    for table in SCORED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('distance', new_column_name='score')
    with op.batch_alter_table('face_check', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model', sa.String(length=60), nullable=True))
    with op.batch_alter_table('identity_flag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model', sa.String(length=60), nullable=True))
    op.execute("UPDATE face_check SET model = 'dlib' WHERE status <> 'pending'")
    op.execute("UPDATE identity_flag SET model = 'dlib' WHERE score IS NOT NULL")


def downgrade():
    with op.batch_alter_table('identity_flag', schema=None) as batch_op:
        batch_op.drop_column('model')
    with op.batch_alter_table('face_check', schema=None) as batch_op:
        batch_op.drop_column('model')
    for table in SCORED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('score', new_column_name='distance')
    with op.batch_alter_table('face_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_reference_encoded_at'))
        batch_op.drop_index(batch_op.f('ix_face_reference_model'))
        batch_op.drop_column('encoded_at')
        batch_op.drop_column('model')
