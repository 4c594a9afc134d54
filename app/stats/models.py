"""Statistics kept for the bureau: figures rolled up per period and slice, and the monthly
reports frozen from them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.extensions import Model


class StatValue(Model):
    """One figure for one period ('2026' or '2026-03') and one slice, as last rolled up.

    '' and 0 mean "the whole city" and "all programmes": figures that count people are not
    sums of their slices, so every slice the pages read is a row of its own.
    """

    __tablename__ = "stat_value"

    id: Mapped[int] = mapped_column(primary_key=True)
    figure_key: Mapped[str] = mapped_column(sa.String(40))
    period: Mapped[str] = mapped_column(sa.String(7))
    district_code: Mapped[str] = mapped_column(sa.String(6), default="")
    programme_id: Mapped[int] = mapped_column(default=0)
    value: Mapped[Decimal] = mapped_column(sa.Numeric(18, 2))
    definition_version: Mapped[int] = mapped_column(default=1)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint(
            "figure_key", "period", "district_code", "programme_id", name="uq_stat_value_slice"
        ),
        sa.Index("ix_stat_value_period_district", "period", "district_code"),
    )


class StatReport(Model):
    """A month's figures frozen on the first of the next month (月度数据报送). Never changed:
    a correction is a new version with its reason; the digest of `content` is in the audit log."""

    __tablename__ = "stat_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(7))  # '2026-03'
    version: Mapped[int] = mapped_column(default=1)
    content: Mapped[dict] = mapped_column(sa.JSON)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    frozen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None: the schedule froze it.
    frozen_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))

    __table_args__ = (sa.UniqueConstraint("period", "version", name="uq_stat_report_version"),)
