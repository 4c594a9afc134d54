"""The bureau's frame: districts, special programmes, targets and trainee groups."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import str_enum, utcnow
from app.extensions import Model


class DistrictKind(enum.StrEnum):
    DISTRICT = "district"  # 区
    COUNTY = "county"  # 县 and autonomous counties
    ZONE = "zone"  # a management zone that reports like a district (两江新区 ...)


class District(Model):
    """A county-level division of the city, or a zone reporting like one (`data/districts.csv`)."""

    __tablename__ = "district"

    code: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40))
    name_en: Mapped[str] = mapped_column(sa.String(80))
    kind: Mapped[DistrictKind] = mapped_column(str_enum(DistrictKind))
    position: Mapped[int] = mapped_column(default=0)


class Programme(Model):
    """A special training programme (专项培训计划) of one year, with its own target.

    A part of a programme (鲁渝协作 within 贫困劳动力) names its parent: its trainings count
    towards the parent's target as well as its own.
    """

    __tablename__ = "programme"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("programme.id", ondelete="RESTRICT")
    )
    target_trainings: Mapped[int] = mapped_column(default=0)
    # Codes of TraineeGroupKind and occupation codes; empty means any.
    target_groups: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    occupation_codes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    budget_yuan: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2), default=Decimal("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))

    __table_args__ = (
        sa.UniqueConstraint("year", "name", name="uq_programme_year_name"),
        sa.CheckConstraint("target_trainings >= 0", name="target_not_negative"),
    )


class Target(Model):
    """A number the city set for one figure in one year: city-wide, for a district, for a
    programme, or for a programme within a district."""

    __tablename__ = "stat_target"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(index=True)
    figure_key: Mapped[str] = mapped_column(sa.String(40))
    # '' and 0 mean "the whole city" and "all programmes": real values keep the unique key simple.
    district_code: Mapped[str] = mapped_column(sa.String(6), default="")
    programme_id: Mapped[int] = mapped_column(default=0)
    value: Mapped[Decimal] = mapped_column(sa.Numeric(16, 2))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))

    __table_args__ = (
        sa.UniqueConstraint(
            "year", "figure_key", "district_code", "programme_id", name="uq_stat_target_scope"
        ),
        sa.CheckConstraint("value >= 0", name="value_not_negative"),
    )


class TraineeGroupKind(enum.StrEnum):
    """The employment policy's key groups (就业重点群体)."""

    POOR_LABOURER = "poor_labourer"  # 建档立卡贫困劳动力
    MIGRANT_WORKER = "migrant_worker"  # 农民工
    UNEMPLOYED = "unemployed"  # 登记失业人员
    GRADUATE = "graduate"  # 高校毕业生
    VETERAN = "veteran"  # 退役军人
    ENTERPRISE_STAFF = "enterprise_staff"  # 企业职工
    DISABLED = "disabled"  # 残疾人


class GroupSource(enum.StrEnum):
    SELF_DECLARED = "self_declared"
    STAFF_VERIFIED = "staff_verified"
    IMPORTED = "imported"  # from another bureau system (poverty alleviation, employment ...)


class TraineeGroup(Model):
    """That a trainee belongs to a key group, where the fact came from and when."""

    __tablename__ = "trainee_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[TraineeGroupKind] = mapped_column(str_enum(TraineeGroupKind))
    source: Mapped[GroupSource] = mapped_column(str_enum(GroupSource))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))

    __table_args__ = (sa.UniqueConstraint("user_id", "kind", name="uq_trainee_group_once"),)
