"""The job table: the durable record of background work, whatever runs it."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import str_enum, utcnow
from app.extensions import db


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(db.Model):
    """One unit of background work on one subject (a lesson id for transcoding)."""

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    subject_id: Mapped[int]
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus), default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    progress: Mapped[float] = mapped_column(default=0.0)
    error_code: Mapped[str | None] = mapped_column(sa.String(40))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    # `host:pid` of the worker that claimed it, and when that worker last said it was alive.
    locked_by: Mapped[str | None] = mapped_column(sa.String(120))
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When a worker was last woken for it: the row is the outbox, so a queued job whose wake-up
    # failed (broker down) or was lost is woken again by the sweeper (`service.sweep`).
    dispatched_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        sa.Index("ix_job_status_kind", "status", "kind"),
        sa.Index("ix_job_kind_subject", "kind", "subject_id"),
    )

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


class ScheduleRun(db.Model):
    """When a periodic task (`app.jobs.schedule`) last ran: each worker's timer takes a turn by
    one conditional update of this row, so one process runs it per interval, whatever runs."""

    __tablename__ = "job_schedule"

    name: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    last_run_at: Mapped[datetime | None]
    last_run_by: Mapped[str | None] = mapped_column(sa.String(120))
