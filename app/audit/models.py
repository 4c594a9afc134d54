"""The audit log: append-only entries, each sealed with the hash of the one before it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model

# The prev_hash of the first entry: there is nothing before it.
GENESIS_HASH = "0" * 64


class AuditEntry(Model):
    """One thing that happened: who (actor), did what (action), to what (subject), when, from
    where. Rows are only ever inserted; ``hash`` covers every other column (see
    ``service.entry_hash``), so an edit made behind the application's back shows up in
    ``flask audit verify``.
    """

    __tablename__ = "audit_entry"

    # The id is the sequence number too (1, 2, 3...), given under the append lock, so it is
    # known before the insert and sealed like the rest.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(unique=True)
    # Stored to the microsecond in UTC, which both databases give back exactly as hashed.
    at: Mapped[datetime]
    # Null for the system and the command line, which act without an account.
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"), index=True)
    actor_label: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    subject_type: Mapped[str] = mapped_column(sa.String(32))
    subject_id: Mapped[str | None] = mapped_column(sa.String(64))
    address: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[str] = mapped_column(sa.Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index("ix_audit_entry_subject", "subject_type", "subject_id"),)
