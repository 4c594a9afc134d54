"""Courses, lessons, their uploads and captions."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Occupation
from app.db import str_enum, utcnow
from app.extensions import Model
from app.platforms.models import Platform


class CourseLevel(enum.StrEnum):
    """National vocational qualification levels, from 5 (初级) up to 1 (高级技师)."""

    JUNIOR = "junior"
    INTERMEDIATE = "intermediate"
    SENIOR = "senior"
    TECHNICIAN = "technician"
    SENIOR_TECHNICIAN = "senior_technician"


LEVEL_NAMES_ZH = {
    CourseLevel.JUNIOR: "初级",
    CourseLevel.INTERMEDIATE: "中级",
    CourseLevel.SENIOR: "高级",
    CourseLevel.TECHNICIAN: "技师",
    CourseLevel.SENIOR_TECHNICIAN: "高级技师",
}
LEVEL_LABELS = {
    CourseLevel.JUNIOR: _l("Junior (level 5)"),
    CourseLevel.INTERMEDIATE: _l("Intermediate (level 4)"),
    CourseLevel.SENIOR: _l("Senior (level 3)"),
    CourseLevel.TECHNICIAN: _l("Technician (level 2)"),
    CourseLevel.SENIOR_TECHNICIAN: _l("Senior technician (level 1)"),
}


class CourseStatus(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


# A platform may change a course only while nobody studies it and nobody reviews it.
EDITABLE = frozenset({CourseStatus.DRAFT, CourseStatus.REJECTED})


class LessonStatus(enum.StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    UPLOADING = "uploading"
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


def new_media_id() -> str:
    return uuid.uuid4().hex


class Course(Model):
    __tablename__ = "course"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platform.id"), index=True)
    occupation_code: Mapped[str] = mapped_column(sa.ForeignKey("occupation.code"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    level: Mapped[CourseLevel | None] = mapped_column(str_enum(CourseLevel))
    hours: Mapped[Decimal] = mapped_column(sa.Numeric(6, 1))  # nominal class hours
    description: Mapped[str] = mapped_column(sa.Text, default="")
    cover_key: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[CourseStatus] = mapped_column(
        str_enum(CourseStatus), default=CourseStatus.DRAFT, index=True
    )
    reject_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    # Where the course is offered (None: the whole city), and the programme it serves.
    district_code: Mapped[str | None] = mapped_column(
        sa.ForeignKey("district.code", ondelete="RESTRICT"), index=True
    )
    programme_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("programme.id", ondelete="RESTRICT"), index=True
    )

    platform: Mapped[Platform] = relationship()
    occupation: Mapped[Occupation] = relationship()
    lessons: Mapped[list[Lesson]] = relationship(
        back_populates="course", order_by="Lesson.position", cascade="all, delete-orphan"
    )

    __table_args__ = (sa.CheckConstraint("hours > 0", name="hours_positive"),)


class Lesson(Model):
    __tablename__ = "lesson"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("course.id", ondelete="CASCADE"))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(sa.String(200))
    # Names this lesson's objects in storage (`uploads/<media_id>/...`, `hls/<media_id>/...`).
    media_id: Mapped[str] = mapped_column(sa.String(32), unique=True, default=new_media_id)
    status: Mapped[LessonStatus] = mapped_column(
        str_enum(LessonStatus), default=LessonStatus.AWAITING_UPLOAD
    )
    progress: Mapped[float] = mapped_column(default=0.0)
    error_code: Mapped[str | None] = mapped_column(sa.String(40))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    upload_total: Mapped[int | None] = mapped_column(sa.BigInteger)
    upload_received: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    source_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    duration_s: Mapped[float | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    # Start of the first MPEG-TS segment, so captions line up (X-TIMESTAMP-MAP).
    mpegts_start_pts: Mapped[int | None] = mapped_column(sa.BigInteger)
    renditions: Mapped[str | None] = mapped_column(sa.Text)  # JSON list, for the admin page
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    course: Mapped[Course] = relationship(back_populates="lessons")
    parts: Mapped[list[UploadPart]] = relationship(
        order_by="UploadPart.offset", cascade="all, delete-orphan"
    )
    captions: Mapped[list[Caption]] = relationship(
        order_by="Caption.language", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.UniqueConstraint("course_id", "position", name="uq_lesson_course_position"),
    )

    @property
    def source_key(self) -> str:
        return f"sources/{self.media_id}/source"

    @property
    def hls_prefix(self) -> str:
        return f"hls/{self.media_id}/"

    @property
    def poster_key(self) -> str:
        return f"posters/{self.media_id}/poster.jpg"


class UploadPart(Model):
    """One chunk of a resumable upload, stored as its own object until the file is assembled."""

    __tablename__ = "upload_part"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"))
    offset: Mapped[int] = mapped_column(sa.BigInteger)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    key: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (sa.UniqueConstraint("lesson_id", "offset", name="uq_upload_part_offset"),)


class Caption(Model):
    __tablename__ = "caption"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(sa.String(16))  # BCP 47: zh-CN, en
    label: Mapped[str] = mapped_column(sa.String(64))
    key: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The WebVTT kept, by its digest; the object key names it, so a replacement is a new file
    # and a transaction rolled back still points at the file it described. None: stored before
    # digests were kept.
    sha256: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (sa.UniqueConstraint("lesson_id", "language", name="uq_caption_language"),)


class CaptionChange(Model):
    """Captions sent for a lesson whose course was already submitted.

    Captions are an accessibility fix, so a platform may replace them in review or after
    publication without a round trip through rejection; each such change waits here, shown
    on the course's admin page, until an admin has looked at it.
    """

    __tablename__ = "caption_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(
        sa.ForeignKey("lesson.id", ondelete="CASCADE"), index=True
    )
    language: Mapped[str] = mapped_column(sa.String(16))
    course_status: Mapped[CourseStatus] = mapped_column(str_enum(CourseStatus))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    previous_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    cue_count: Mapped[int]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user.id", ondelete="SET NULL")
    )

    lesson: Mapped[Lesson] = relationship()
