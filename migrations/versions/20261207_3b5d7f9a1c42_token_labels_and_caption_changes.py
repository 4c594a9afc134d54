"""caption replacements on submitted courses, seen by admins

Captions may now change after a course is submitted. Each caption keeps the digest of its
WebVTT (its object key names the digest, so a replacement is a new file), and every change to
a submitted course is a `caption_change` row that admins acknowledge.

Revision ID: 3b5d7f9a1c42
Revises: 2a4c6e8f0b31
Create Date: 2026-12-07 20:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "3b5d7f9a1c42"
down_revision = "2a4c6e8f0b31"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("caption", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
    op.create_table(
        "caption_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesson_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("course_status", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("previous_sha256", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("cue_count", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["user.id"],
            name=op.f("fk_caption_change_acknowledged_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["user.id"],
            name=op.f("fk_caption_change_changed_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lesson_id"],
            ["lesson.id"],
            name=op.f("fk_caption_change_lesson_id_lesson"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caption_change")),
    )
    with op.batch_alter_table("caption_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_caption_change_lesson_id"), ["lesson_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("caption_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caption_change_lesson_id"))
    op.drop_table("caption_change")
    with op.batch_alter_table("caption", schema=None) as batch_op:
        batch_op.drop_column("sha256")
