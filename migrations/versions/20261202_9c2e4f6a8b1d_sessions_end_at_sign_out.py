"""sessions end at sign-out: a session epoch per account, named by every signed-in cookie

Revision ID: 9c2e4f6a8b1d
Revises: 7a3c9e1d4b2f
Create Date: 2026-12-02 01:40:00.000000

Cookies issued before this revision name the bare account id and no longer sign anyone in:
everyone signs in once more.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c2e4f6a8b1d'
down_revision = '7a3c9e1d4b2f'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('session_epoch', server_default=None)


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
