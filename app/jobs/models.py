"""The job table: the durable record of background work, whatever runs it."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import str_enum, utcnow
from app.extensions import Model


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(Model):
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
    # The request that queued it (X-Request-ID): the worker logs the job's lines under it.
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        sa.Index("ix_job_status_kind", "status", "kind"),
        sa.Index("ix_job_kind_subject", "kind", "subject_id"),
    )

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


class RunOutcome(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


class ScheduleRun(Model):
    """When a periodic task (`app.jobs.schedule`) last ran: each worker's timer takes a turn by
    one conditional update of this row, so one process runs it per interval, whatever runs."""

    __tablename__ = "job_schedule"

    name: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    last_run_at: Mapped[datetime | None]
    last_run_by: Mapped[str | None] = mapped_column(sa.String(120))
    # How the last run ended, for a monitor's one-table query (the history has the details).
    last_outcome: Mapped[RunOutcome | None] = mapped_column(str_enum(RunOutcome))


class TaskRun(Model):
    """One run of a periodic task and how it ended: the schedule's history, kept to the newest
    SCHEDULE_HISTORY_RUNS per task by the schedule itself (`prune_schedule_history`)."""

    __tablename__ = "job_schedule_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    # `timer` (a turn of the schedule) or `operator` (`flask schedule run-now`).
    trigger: Mapped[str] = mapped_column(sa.String(10))
    run_by: Mapped[str] = mapped_column(sa.String(120))  # host:pid
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[RunOutcome] = mapped_column(str_enum(RunOutcome), default=RunOutcome.RUNNING)
    # What the task handled (rows deleted, jobs woken...) when it says; None when it does not.
    items: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("ix_job_schedule_run_name_id", "name", "id"),)


class ScheduleTimer(Model):
    """A live timer, so `flask schedule list` can say whether any runs: each timer that takes
    shared turns writes its heartbeat here now and then, and removes its row when it stops."""

    __tablename__ = "job_schedule_timer"

    id: Mapped[str] = mapped_column(sa.String(120), primary_key=True)  # host:pid
    # `worker` (inside a job worker) or `dedicated` (`flask schedule run`).
    mode: Mapped[str] = mapped_column(sa.String(20))
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
