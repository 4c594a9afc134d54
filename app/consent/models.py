"""Consents given and withdrawn: one row per giving, never deleted, ended by a withdrawal."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.extensions import Model


class Consent(Model):
    """A trainee's consent to one purpose (``face_verification``), at one version of its text.

    It stands until ``ended_at``: withdrawn by the trainee (``ended_because`` ``withdrawn``) or
    replaced by consent to a newer version of the text (``superseded``). The rows stay, so
    what was agreed to and when can always be shown.
    """

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    purpose: Mapped[str] = mapped_column(sa.String(40))
    version: Mapped[str] = mapped_column(sa.String(40))
    given_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    ended_because: Mapped[str | None] = mapped_column(sa.String(20))

    __table_args__ = (
        # One standing consent per purpose, even against two clicks at once.
        sa.Index(
            "uq_consent_standing",
            "user_id",
            "purpose",
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        ),
    )
