"""SMS codes for password recovery and phone verification

Revision ID: 1f3a5c7e9b20
Revises: d5f7b9c1e3a4
Create Date: 2026-12-07 20:00:00.000000

One-time codes, kept only as keyed digests (the phone too), and a flag that makes a
temporary password handed out by staff be changed at the next sign-in.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "1f3a5c7e9b20"
down_revision = "d5f7b9c1e3a4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sms_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum("password_reset", "register", name="codepurpose", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("phone_digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_sms_code_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_code")),
    )
    with op.batch_alter_table("sms_code", schema=None) as batch_op:
        batch_op.create_index("ix_sms_code_lookup", ["purpose", "phone_digest", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_code_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "password_change_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column("password_change_required", server_default=None)


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("password_change_required")
    with op.batch_alter_table("sms_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_code_user_id"))
        batch_op.drop_index("ix_sms_code_lookup")
    op.drop_table("sms_code")
