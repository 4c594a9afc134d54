"""The inbox: one row per notification, holding what happened (kind and params), not a sentence."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.extensions import Model


class Notification(Model):
    """Something the account holder should know. The text is rendered from ``kind`` and
    ``params`` (JSON) when it is read, in the reader's language."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    params: Mapped[str] = mapped_column(sa.Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # Set once the text message went out (kinds that warrant one, where SMS is configured).
    sms_sent_at: Mapped[datetime | None]

    __table_args__ = (sa.Index("ix_notification_user_id_id", "user_id", "id"),)
