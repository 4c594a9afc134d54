"""Training platforms approved by the bureau."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import str_enum, utcnow
from app.extensions import Model


class PlatformStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Platform(Model):
    """A provider. It acts through one service account (a user with the platform role)."""

    __tablename__ = "platform"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    contact_name: Mapped[str] = mapped_column(sa.String(64), default="")
    contact_phone: Mapped[str] = mapped_column(sa.String(32), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    # Where the provider is registered; None for one serving the whole city.
    district_code: Mapped[str | None] = mapped_column(
        sa.ForeignKey("district.code", ondelete="RESTRICT"), index=True
    )
    status: Mapped[PlatformStatus] = mapped_column(
        str_enum(PlatformStatus), default=PlatformStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def active(self) -> bool:
        return self.status is PlatformStatus.ACTIVE
