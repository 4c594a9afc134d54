"""Enrolments, study sessions, per-lesson progress and the heartbeat record."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.courses.models import Course, Lesson
from app.db import str_enum, utcnow
from app.extensions import Model


class Enrollment(Model):
    __tablename__ = "enrollment"

    id: Mapped[int] = mapped_column(primary_key=True)
    trainee_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("course.id"), index=True)
    # Indexed for the statistics' roll-up, which reads enrolments by period.
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(index=True)
    # The programme this training counts towards: the course's when the trainee enrolled.
    programme_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("programme.id", ondelete="RESTRICT"), index=True
    )

    course: Mapped[Course] = relationship()
    progress: Mapped[list[LessonProgress]] = relationship(back_populates="enrollment")

    __table_args__ = (sa.UniqueConstraint("trainee_id", "course_id", name="uq_enrollment_once"),)


class SessionEnd(enum.StrEnum):
    SUPERSEDED = "superseded"  # the trainee started studying elsewhere
    CLOSED = "closed"  # the player said goodbye


class StudySession(Model):
    """One sitting with one lesson, on one device. Only one is open per trainee at a time: the
    database holds that (a unique index over the open ones), not a check before the insert."""

    __tablename__ = "study_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrollment.id"), index=True)
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id"))
    trainee_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # statistics
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[SessionEnd | None] = mapped_column(str_enum(SessionEnd))
    # When it opened and the previous accepted heartbeat, on the server's clock (epoch seconds).
    opened_at: Mapped[float | None]
    last_at: Mapped[float | None]
    last_position_s: Mapped[float | None]
    # Whether that heartbeat said visible and playing (see rules.SessionState.last_active).
    last_active: Mapped[bool] = mapped_column(default=False)
    # The newest heartbeat sequence number judged (rules.SessionState.last_seq).
    last_seq: Mapped[int | None]
    # The stretches this session credited, a merged JSON list of [start, end] seconds.
    credited_spans: Mapped[str] = mapped_column(sa.Text, default="[]")
    credited_s: Mapped[float] = mapped_column(default=0.0)
    # Face checks: credited time not yet confirmed by a passed check (voided if one fails),
    # credited time since the last check was asked, and the (secret) amount before the next.
    unverified_s: Mapped[float] = mapped_column(default=0.0)
    since_check_s: Mapped[float] = mapped_column(default=0.0)
    next_check_after_s: Mapped[float] = mapped_column(default=0.0)
    # A face check of this session waits for its answer (set when one is asked, cleared when
    # one closes): a heartbeat learns it from the row it locks, with no look-up of the checks.
    awaiting_check: Mapped[bool] = mapped_column(default=False)
    # Unconfirmed time that lapsed because the session ended before a check confirmed it.
    lapsed_s: Mapped[float] = mapped_column(default=0.0)
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="")
    address: Mapped[str] = mapped_column(sa.String(64), default="")

    lesson: Mapped[Lesson] = relationship()

    __table_args__ = (
        sa.Index(
            "uq_study_session_one_open",
            "trainee_id",
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        ),
    )

    @property
    def active(self) -> bool:
        return self.ended_at is None


class LessonProgress(Model):
    """What the server credited for one lesson of one enrolment, across all sessions."""

    __tablename__ = "lesson_progress"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrollment.id"))
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id"))
    credited_s: Mapped[float] = mapped_column(default=0.0)
    # Credited time taken back: a face check failed or went unanswered, or the session ended
    # before a check confirmed it.
    voided_s: Mapped[float] = mapped_column(default=0.0)
    # Credited time waiting for a face check: it counts once a check passes, is voided if the
    # check fails, and lapses if the session ends first.
    pending_s: Mapped[float] = mapped_column(default=0.0)
    furthest_s: Mapped[float] = mapped_column(default=0.0)
    # Where the player was last, to resume there.
    position_s: Mapped[float] = mapped_column(default=0.0)
    # The watched stretches as a merged JSON list of [start, end] seconds.
    covered: Mapped[str] = mapped_column(sa.Text, default="[]")
    coverage: Mapped[float] = mapped_column(default=0.0)
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    enrollment: Mapped[Enrollment] = relationship(back_populates="progress")

    @property
    def counted_s(self) -> float:
        """Credited time not taken back: confirmed or still waiting for its check."""
        return max(0.0, round(self.credited_s - self.voided_s, 3))

    @property
    def verified_s(self) -> float:
        """Credited time a passed face check confirmed: what completion and money count."""
        return max(0.0, round(self.credited_s - self.voided_s - self.pending_s, 3))

    __table_args__ = (
        sa.UniqueConstraint("enrollment_id", "lesson_id", name="uq_lesson_progress_lesson"),
    )


class HeartbeatRecord(Model):
    """Every heartbeat as received, and what it earned: the evidence behind credited time."""

    __tablename__ = "heartbeat"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("study_session.id"), index=True)
    received_at: Mapped[float]  # server clock, epoch seconds
    seq: Mapped[int | None]  # the client's sequence number, if it sent one
    position_s: Mapped[float]
    hidden: Mapped[bool]
    playing: Mapped[bool]
    credited_s: Mapped[float]
    reason: Mapped[str | None] = mapped_column(sa.String(32))
