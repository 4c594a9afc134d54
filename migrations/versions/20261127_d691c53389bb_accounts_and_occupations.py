"""accounts and occupations

Revision ID: d691c53389bb
Revises: 
Create Date: 2026-11-27 09:22:13.307497

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd691c53389bb'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('occupation',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('gb_code', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('parent_code', sa.String(length=16), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint('level BETWEEN 1 AND 4', name=op.f('ck_occupation_level_range')),
    sa.ForeignKeyConstraint(['parent_code'], ['occupation.code'], name=op.f('fk_occupation_parent_code_occupation'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_occupation'))
    )
    with op.batch_alter_table('occupation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_occupation_level'), ['level'], unique=False)
        batch_op.create_index(batch_op.f('ix_occupation_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_occupation_parent_code'), ['parent_code'], unique=False)

    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('trainee', 'platform', 'auditor', 'admin', name='role', native_enum=False, length=20), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('id_number_digest', sa.String(length=64), nullable=True),
    sa.Column('id_number_cipher', sa.Text(), nullable=True),
    sa.Column('id_number_masked', sa.String(length=18), nullable=True),
    sa.Column('phone', sa.String(length=11), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('sex', sa.Enum('male', 'female', name='sex', native_enum=False), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('id_number_digest', name=op.f('uq_user_id_number_digest')),
    sa.UniqueConstraint('username', name=op.f('uq_user_username'))
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_role'), ['role'], unique=False)

    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_api_token_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))

    op.drop_table('api_token')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_role'))

    op.drop_table('user')
    with op.batch_alter_table('occupation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_occupation_parent_code'))
        batch_op.drop_index(batch_op.f('ix_occupation_name'))
        batch_op.drop_index(batch_op.f('ix_occupation_level'))

    op.drop_table('occupation')
