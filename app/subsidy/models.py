"""Subsidy standards, auditors' decisions, spot-check draws, trainees' appeals, and the
auditors' queue kept as rows."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Occupation
from app.courses.models import CourseLevel
from app.db import str_enum, utcnow
from app.extensions import Model
from app.subsidy.rules import Status


class SubsidyStandard(Model):
    """What the bureau pays for completing a course of one occupation at one level.

    A row without a level covers every level of the occupation that has no row of its own.
    """

    __tablename__ = "subsidy_standard"

    id: Mapped[int] = mapped_column(primary_key=True)
    occupation_code: Mapped[str] = mapped_column(sa.ForeignKey("occupation.code"), index=True)
    level: Mapped[CourseLevel | None] = mapped_column(str_enum(CourseLevel))
    amount_yuan: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))

    occupation: Mapped[Occupation] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("occupation_code", "level", name="uq_subsidy_standard_level"),
    )


class Action(enum.StrEnum):
    APPROVE = "approve"  # an auditor grants the subsidy
    REJECT = "reject"  # an auditor refuses it
    CLEAR_CHECK = "clear_check"  # an auditor finds a failed check was the trainee after all
    ELIGIBLE = "eligible"  # the rules found a complete, clean enrolment (no human involved)


class Decision(Model):
    """One decision on an enrolment, with its reason; never edited, only followed by another."""

    __tablename__ = "subsidy_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrollment.id"), index=True)
    action: Mapped[Action] = mapped_column(str_enum(Action))
    check_id: Mapped[int | None] = mapped_column(sa.ForeignKey("face_check.id"), index=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    amount_yuan: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    decided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # statistics


class SpotCheck(Model):
    """The one random draw, made when an enrolment completes, of whether a human looks anyway."""

    __tablename__ = "subsidy_spot_check"

    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrollment.id"), primary_key=True)
    selected: Mapped[bool]
    rate: Mapped[float]
    drawn_at: Mapped[datetime] = mapped_column(default=utcnow)


class Appeal(Model):
    """A trainee's answer to a rejection; it puts the enrolment back in the auditors' queue."""

    __tablename__ = "subsidy_appeal"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrollment.id"), index=True)
    rejection_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_decision.id"))
    message: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QueueEntry(Model):
    """An enrolment's standing in the auditors' queue, as the rules last found it.

    Derived, never the truth: written from the facts in the same transaction as each event
    that changes them (app/subsidy/queue.py lists them), so the desk reads the queue in one
    query instead of judging every flagged enrolment on every view. ``stale`` marks a row an
    event changed without recomputing it; the desk recomputes a bounded batch of those per
    view and `flask subsidy rebuild-queue` all of them. ``reasons`` and ``checks`` are the
    assessment's reasons and the answered checks as JSON, turned into sentences when read.
    """

    __tablename__ = "desk_queue"

    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrollment.id"), primary_key=True)
    status: Mapped[Status] = mapped_column(str_enum(Status))
    risk: Mapped[int] = mapped_column(default=0)
    complete: Mapped[bool] = mapped_column(default=False)
    reasons: Mapped[list[dict]] = mapped_column(sa.JSON, default=list)
    checks: Mapped[list[dict]] = mapped_column(sa.JSON, default=list)
    stale: Mapped[bool] = mapped_column(default=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Minus the risk: the queue's order (riskiest first, then the longest waiting) is then one
    # ascending index, so a page of the queue reads only its own rows however many wait.
    priority: Mapped[int] = mapped_column(default=0)

    __table_args__ = (sa.Index("ix_desk_queue_order", "status", "priority", "enrollment_id"),)
