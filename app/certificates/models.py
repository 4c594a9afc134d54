"""The certificate table: one row per issue, revoked rows kept on record."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.courses.models import CourseLevel
from app.db import str_enum, utcnow
from app.extensions import Model


class Certificate(Model):
    """A training certificate. What it certifies is copied in when it is issued, so later
    changes to the course, the catalogue or the account never rewrite a certificate."""

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    # `VS2026-7KQ3M-X9D2R`: see service.new_number for why it is random rather than sequential.
    number: Mapped[str] = mapped_column(sa.String(24), unique=True)
    # Printed on the certificate and in its QR code: proves a paper copy came from us.
    verify_code: Mapped[str] = mapped_column(sa.String(8))
    # Not unique: a revoked certificate stays on record beside the one issued after it.
    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrollment.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    holder_name: Mapped[str] = mapped_column(sa.String(64))
    occupation_code: Mapped[str] = mapped_column(sa.String(16))
    occupation_name: Mapped[str] = mapped_column(sa.String(200))
    course_title: Mapped[str] = mapped_column(sa.String(200))
    level: Mapped[CourseLevel | None] = mapped_column(str_enum(CourseLevel))
    hours: Mapped[Decimal] = mapped_column(sa.Numeric(8, 2))  # verified study hours
    issued_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # statistics
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.CheckConstraint("hours >= 0", name="hours_not_negative"),
        # At most one live certificate per enrolment, even against concurrent issues.
        sa.Index(
            "uq_certificate_live_enrollment",
            "enrollment_id",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    @property
    def valid(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<Certificate {self.number}{' revoked' if self.revoked_at else ''}>"
