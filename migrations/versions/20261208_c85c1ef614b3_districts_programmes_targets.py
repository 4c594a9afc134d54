"""districts, special programmes, targets, trainee groups, rolled-up figures, monthly reports

`district` holds the city's county-level divisions and reporting zones (loaded by
`flask bureau load-districts`); trainees, platforms and courses name theirs. `programme` and
`stat_target` hold what the city set out to do; `trainee_group` who belongs to which key group
and on what evidence. `stat_value` keeps each figure per period and slice as last rolled up,
`stat_report` each month's frozen report and its corrections.

Revision ID: c85c1ef614b3
Revises: 6f8b0c2d4e75
Create Date: 2026-12-08 01:45:04.280039
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c85c1ef614b3"
down_revision = "6f8b0c2d4e75"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "district",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("name_en", sa.String(length=80), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "district", "county", "zone", name="districtkind", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_district")),
    )
    op.create_table(
        "stat_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("figure_key", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("definition_version", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stat_value")),
        sa.UniqueConstraint(
            "figure_key", "period", "district_code", "programme_id", name="uq_stat_value_slice"
        ),
    )
    with op.batch_alter_table("stat_value", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stat_value_period_district", ["period", "district_code"], unique=False
        )

    op.create_table(
        "programme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("target_trainings", sa.Integer(), nullable=False),
        sa.Column("target_groups", sa.JSON(), nullable=False),
        sa.Column("occupation_codes", sa.JSON(), nullable=False),
        sa.Column("budget_yuan", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("target_trainings >= 0", name=op.f("ck_programme_target_not_negative")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["user.id"], name=op.f("fk_programme_created_by_user")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["programme.id"],
            name=op.f("fk_programme_parent_id_programme"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme")),
        sa.UniqueConstraint("year", "name", name="uq_programme_year_name"),
    )
    with op.batch_alter_table("programme", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_programme_year"), ["year"], unique=False)

    op.create_table(
        "stat_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frozen_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["frozen_by"], ["user.id"], name=op.f("fk_stat_report_frozen_by_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stat_report")),
        sa.UniqueConstraint("period", "version", name="uq_stat_report_version"),
    )
    op.create_table(
        "stat_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("figure_key", sa.String(length=40), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("value >= 0", name=op.f("ck_stat_target_value_not_negative")),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["user.id"], name=op.f("fk_stat_target_updated_by_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stat_target")),
        sa.UniqueConstraint(
            "year", "figure_key", "district_code", "programme_id", name="uq_stat_target_scope"
        ),
    )
    with op.batch_alter_table("stat_target", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stat_target_year"), ["year"], unique=False)

    op.create_table(
        "trainee_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "poor_labourer",
                "migrant_worker",
                "unemployed",
                "graduate",
                "veteran",
                "enterprise_staff",
                "disabled",
                name="traineegroupkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "self_declared",
                "staff_verified",
                "imported",
                name="groupsource",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["user.id"], name=op.f("fk_trainee_group_recorded_by_user")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_trainee_group_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trainee_group")),
        sa.UniqueConstraint("user_id", "kind", name="uq_trainee_group_once"),
    )
    with op.batch_alter_table("trainee_group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trainee_group_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.add_column(sa.Column("district_code", sa.String(length=6), nullable=True))
        batch_op.add_column(sa.Column("programme_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_course_district_code"), ["district_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_course_programme_id"), ["programme_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_course_programme_id_programme"),
            "programme",
            ["programme_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_course_district_code_district"),
            "district",
            ["district_code"],
            ["code"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("programme_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_enrollment_programme_id"), ["programme_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_enrollment_programme_id_programme"),
            "programme",
            ["programme_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("platform", schema=None) as batch_op:
        batch_op.add_column(sa.Column("district_code", sa.String(length=6), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_platform_district_code"), ["district_code"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_platform_district_code_district"),
            "district",
            ["district_code"],
            ["code"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("district_code", sa.String(length=6), nullable=True))
        batch_op.create_index(batch_op.f("ix_user_district_code"), ["district_code"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_user_district_code_district"),
            "district",
            ["district_code"],
            ["code"],
            ondelete="RESTRICT",
        )


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_user_district_code_district"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_user_district_code"))
        batch_op.drop_column("district_code")

    with op.batch_alter_table("platform", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_platform_district_code_district"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_platform_district_code"))
        batch_op.drop_column("district_code")

    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_enrollment_programme_id_programme"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_enrollment_programme_id"))
        batch_op.drop_column("programme_id")

    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_course_district_code_district"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_course_programme_id_programme"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_course_programme_id"))
        batch_op.drop_index(batch_op.f("ix_course_district_code"))
        batch_op.drop_column("programme_id")
        batch_op.drop_column("district_code")

    with op.batch_alter_table("trainee_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trainee_group_user_id"))

    op.drop_table("trainee_group")
    with op.batch_alter_table("stat_target", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stat_target_year"))

    op.drop_table("stat_target")
    op.drop_table("stat_report")
    with op.batch_alter_table("programme", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programme_year"))

    op.drop_table("programme")
    with op.batch_alter_table("stat_value", schema=None) as batch_op:
        batch_op.drop_index("ix_stat_value_period_district")

    op.drop_table("stat_value")
    op.drop_table("district")
