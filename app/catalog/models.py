"""The occupation tree."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model

LEVELS = {1: "major", 2: "medium", 3: "minor", 4: "detailed"}


class Occupation(Model):
    """One node of the classification: a group (levels 1 to 3) or an occupation (level 4)."""

    __tablename__ = "occupation"

    code: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # `4-10-01-06`
    gb_code: Mapped[str] = mapped_column(sa.String(8))  # GB/T 6565 numeric code
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    level: Mapped[int] = mapped_column(sa.SmallInteger, index=True)
    parent_code: Mapped[str | None] = mapped_column(
        sa.ForeignKey("occupation.code", ondelete="RESTRICT"), index=True
    )
    # Order within the parent, as in the book.
    position: Mapped[int] = mapped_column(default=0)

    __table_args__ = (sa.CheckConstraint("level BETWEEN 1 AND 4", name="level_range"),)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "parent_code": self.parent_code,
        }
