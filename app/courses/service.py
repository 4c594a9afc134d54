"""Course rules: who may change what, the review workflow, captions and covers."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.audit import service as audit
from app.bureau.models import District, Programme
from app.catalog.models import Occupation
from app.courses.models import (
    EDITABLE,
    LEVEL_NAMES_ZH,
    Caption,
    CaptionChange,
    Course,
    CourseLevel,
    CourseStatus,
    Lesson,
    LessonStatus,
)
from app.db import lock_row, rowcount, utcnow
from app.errors import Conflict, Invalid, NotFound, PayloadTooLarge
from app.extensions import db
from app.identity.models import User
from app.media.service import storage
from app.platforms.models import Platform
from media_pipeline import video

LEVELS_BY_NAME = {name: level for level, name in LEVEL_NAMES_ZH.items()} | {
    level.value: level for level in CourseLevel
}
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_LANGUAGE_LENGTH = Caption.language.type.length  # BCP 47 tags as we keep them: 16
LANGUAGE_LABELS = {"zh": "中文", "zh-CN": "简体中文", "zh-Hans": "简体中文", "en": "English"}
COVER_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
MAX_COVER_BYTES = 5 * 1024 * 1024


def _text(
    data: dict[str, Any], name: str, errors: dict[str, Any], *, required: bool, max_len: int
) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        errors[name] = _l("Required text.")
        return ""
    value = value.strip()
    if len(value) > max_len:
        errors[name] = _l("At most %(n)d characters.", n=max_len)
    return value


def create_course(platform: Platform, data: dict[str, Any]) -> Course:
    errors: dict[str, Any] = {}
    title = _text(data, "title", errors, required=True, max_len=200)
    description = _text(data, "description", errors, required=False, max_len=20_000)
    code = data.get("occupation_code")
    occupation = db.session.get(Occupation, code) if isinstance(code, str) else None
    if occupation is None or occupation.level != 4:
        errors["occupation_code"] = _l("Use the code of a detailed occupation, e.g. 4-10-01-06.")
    hours = _hours(data.get("hours"), errors)
    level = None
    if data.get("level") not in (None, ""):
        level = LEVELS_BY_NAME.get(data["level"]) if isinstance(data["level"], str) else None
        if level is None:
            errors["level"] = _l("Use 初级, 中级, 高级, 技师 or 高级技师, or leave it out.")
    district_code = _district(data.get("district"), platform, errors)
    programme_id = _programme(data.get("programme_id"), occupation, errors)
    if errors or occupation is None:  # no occupation is always among the errors
        raise Invalid(fields=errors)
    course = Course(
        platform=platform,
        occupation_code=occupation.code,
        title=title,
        description=description,
        hours=hours,
        level=level,
        district_code=district_code,
        programme_id=programme_id,
    )
    db.session.add(course)
    db.session.flush()
    return course


def _district(raw: Any, platform: Platform, errors: dict[str, Any]) -> str | None:
    """Where the course is offered: a district code, or the platform's own district."""
    if raw in (None, ""):
        return platform.district_code
    if not isinstance(raw, str) or db.session.get(District, raw) is None:
        errors["district"] = _l("Use a district code from the list, e.g. 500103.")
        return None
    return raw


def _programme(raw: Any, occupation: Occupation | None, errors: dict[str, Any]) -> int | None:
    """The special programme the course serves; its occupation must be one the programme
    names, when the programme names any."""
    if raw in (None, ""):
        return None
    exists = isinstance(raw, int) and not isinstance(raw, bool)
    programme = db.session.get(Programme, raw) if exists else None
    if programme is None:
        errors["programme_id"] = _l("No such programme.")
        return None
    covered = occupation is None or occupation.code in programme.occupation_codes
    if programme.occupation_codes and not covered:
        errors["programme_id"] = _l("The programme does not cover this occupation.")
        return None
    return programme.id


def file_course(course: Course, data: dict[str, Any], *, staff: User) -> None:
    """Admins file a course under a district and a programme (either may be empty: offered
    city-wide, in no programme). Enrolments already made keep the programme they took."""
    errors: dict[str, Any] = {}
    district = data.get("district") or None
    district_code = _district(district, course.platform, errors) if district else None
    programme_id = _programme(_int_or_raw(data.get("programme_id")), course.occupation, errors)
    if errors:
        raise Invalid(fields=errors)
    before = {"district": course.district_code, "programme_id": course.programme_id}
    course.district_code, course.programme_id = district_code, programme_id
    audit.record(
        "course.filed",
        actor=staff,
        subject_type="course",
        subject_id=course.id,
        detail={"from": before, "to": {"district": district_code, "programme_id": programme_id}},
    )
    db.session.flush()


def _int_or_raw(raw: Any) -> Any:
    """A form's digits as a number; anything else as it came, for the check to refuse."""
    return int(raw) if isinstance(raw, str) and raw.isdigit() else raw


def _hours(raw: Any, errors: dict[str, Any]) -> Decimal:
    try:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise InvalidOperation
        hours = Decimal(str(raw))
    except InvalidOperation:
        hours = Decimal(-1)
    if not hours.is_finite() or not Decimal("0.5") <= hours <= Decimal(2000):
        errors["hours"] = _l("Nominal class hours: a number from 0.5 to 2000.")
        return Decimal(1)
    return hours.quantize(Decimal("0.1"))


def course_for(platform: Platform, course_id: int) -> Course:
    """A course of this platform; another platform's course does not exist for it."""
    course = db.session.get(Course, course_id)
    if course is None or course.platform_id != platform.id:
        raise NotFound(_l("No such course."))
    return course


def lesson_for(platform: Platform, lesson_id: int) -> Lesson:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.course.platform_id != platform.id:
        raise NotFound(_l("No such lesson."))
    return lesson


def get_course(course_id: int) -> Course:
    course = db.session.get(Course, course_id)
    if course is None:
        raise NotFound(_l("No such course."))
    return course


def require_editable(course: Course) -> None:
    from app.labels import label  # the message names the status in the caller's words

    if course.status not in EDITABLE:
        raise Conflict(
            _l(
                "The course is %(status)s; it can change only as a draft or after rejection.",
                status=label(course.status),
            ),
            code="course_locked",
        )


def add_lesson(course: Course, data: dict[str, Any]) -> Lesson:
    require_editable(course)
    errors: dict[str, Any] = {}
    title = _text(data, "title", errors, required=True, max_len=200)
    count = len(course.lessons)
    position = data.get("position", count + 1)
    if (
        isinstance(position, bool)
        or not isinstance(position, int)
        or not 1 <= position <= count + 1
    ):
        errors["position"] = _l("A whole number from 1 to %(n)d.", n=count + 1)
    if errors:
        raise Invalid(fields=errors)
    # Make room: later lessons move down one, last first so positions stay unique.
    for later in sorted(course.lessons, key=lambda item: -item.position):
        if later.position >= position:
            later.position += 1
            db.session.flush()
    lesson = Lesson(course=course, position=position, title=title)
    db.session.add(lesson)
    db.session.flush()
    return lesson


def submit(course: Course) -> None:
    """Draft (or rejected) -> in review, once every lesson has a playable video."""
    require_editable(course)
    if not course.lessons:
        raise Conflict(_l("Add at least one lesson first."), code="no_lessons")
    not_ready = [lesson.id for lesson in course.lessons if lesson.status is not LessonStatus.READY]
    if not_ready:
        raise Conflict(
            _l("Every lesson needs a processed video before review."),
            code="lessons_not_ready",
            lesson_ids=not_ready,
        )
    course.status = CourseStatus.IN_REVIEW
    course.reject_reason = None
    course.submitted_at = utcnow()


def _log_decision(course: Course, before: CourseStatus) -> None:
    """Staff decisions on courses go into the audit log, from the pages and the CLI alike."""
    detail: dict[str, str | None] = {"from": before.value, "to": course.status.value}
    if course.status is CourseStatus.REJECTED:
        detail["reason"] = course.reject_reason
    action = {
        CourseStatus.PUBLISHED: "course.publish",
        CourseStatus.REJECTED: "course.reject",
        CourseStatus.WITHDRAWN: "course.withdraw",
    }[course.status]
    audit.record_request(action, subject_type="course", subject_id=course.id, detail=detail)


def _lock_for_decision(course: Course) -> None:
    """Hold the course row and read its status afresh, so that of several decisions sent at
    once (two admins, a double click, the CLI) exactly one applies and is logged; the others
    find the status already changed and are refused with 409."""
    lock_row(db.session, Course, course.id)
    db.session.refresh(course)


def publish(course: Course) -> None:
    _lock_for_decision(course)
    if course.status is not CourseStatus.IN_REVIEW:
        raise Conflict(_l("Only a course in review can be published."), code="not_in_review")
    course.status = CourseStatus.PUBLISHED
    course.published_at = utcnow()
    _log_decision(course, CourseStatus.IN_REVIEW)


def reject(course: Course, reason: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(fields={"reason": _l("Say why, so the platform can fix it.")})
    _lock_for_decision(course)
    if course.status is not CourseStatus.IN_REVIEW:
        raise Conflict(_l("Only a course in review can be rejected."), code="not_in_review")
    course.status = CourseStatus.REJECTED
    course.reject_reason = reason[:2000]
    _log_decision(course, CourseStatus.IN_REVIEW)


def withdraw(course: Course) -> None:
    _lock_for_decision(course)
    if course.status is not CourseStatus.PUBLISHED:
        raise Conflict(_l("Only a published course can be withdrawn."), code="not_published")
    course.status = CourseStatus.WITHDRAWN
    _log_decision(course, CourseStatus.PUBLISHED)


def courses_of(platform: Platform) -> list[Course]:
    return list(
        db.session.scalars(
            sa.select(Course).where(Course.platform_id == platform.id).order_by(Course.id)
        )
    )


def courses_for_review(status: CourseStatus | None = None) -> list[Course]:
    query = sa.select(Course).order_by(Course.updated_at.desc())
    if status is not None:
        query = query.where(Course.status == status)
    return list(db.session.scalars(query))


# Captions are an accessibility fix: besides an editable course, one in review or published
# takes new captions too, each change recorded for the admins (CaptionChange).
CAPTIONS_OPEN = EDITABLE | {CourseStatus.IN_REVIEW, CourseStatus.PUBLISHED}


def add_captions(lesson: Lesson, language: Any, data: bytes, actor: User | None = None) -> Caption:
    """Store captions (SRT or WebVTT in) as WebVTT, replacing any in the same language.

    A course already submitted keeps its place in review or in the catalogue; the change is
    recorded (CaptionChange) for the admins to see. Sending the same captions again changes
    nothing.
    """
    course = lesson.course
    # Held to the commit: the status read is the one the change lands on (not a course being
    # withdrawn at that moment), and two uploads in one language replace in turn.
    lock_row(db.session, Course, course.id)
    db.session.refresh(course)
    db.session.refresh(lesson)
    if course.status not in CAPTIONS_OPEN:
        require_editable(course)
    language = language.strip() if isinstance(language, str) else ""
    if len(language) > MAX_LANGUAGE_LENGTH or not LANGUAGE_PATTERN.match(language):
        raise Invalid(fields={"language": _l("A language tag such as zh-CN or en.")})
    try:
        text = video.captions_to_webvtt(data, mpegts_start_pts=lesson.mpegts_start_pts)
    except video.VideoError as error:
        if error.line is not None:
            message = _l(
                "Line %(line)d of the captions is not a timing such as "
                "00:00:01,000 --> 00:00:04,000.",
                line=error.line,
            )
        else:
            message = _l("The file is not SRT or WebVTT captions.")
        raise Invalid(message, code=error.code) from None
    body = text.encode()
    digest = hashlib.sha256(body).hexdigest()
    caption = next((c for c in lesson.captions if c.language == language), None)
    if caption is not None and caption.sha256 == digest:
        return caption
    previous = caption.sha256 if caption is not None else None
    if caption is None:
        caption = Caption(lesson_id=lesson.id, language=language)
        lesson.captions.append(caption)
    caption.label = LANGUAGE_LABELS.get(language, language)
    caption.key = f"captions/{lesson.media_id}/{language}/{digest[:16]}.vtt"
    caption.sha256 = digest
    if course.status not in EDITABLE:
        db.session.add(
            CaptionChange(
                lesson_id=lesson.id,
                language=language,
                course_status=course.status,
                changed_by_id=actor.id if actor is not None else None,
                previous_sha256=previous,
                sha256=digest,
                cue_count=text.count(" --> "),
            )
        )
        audit.record_request(
            "course.captions_replaced",
            subject_type="course",
            subject_id=course.id,
            detail={"lesson": lesson.id, "language": language, "sha256": digest},
            actor=actor,
        )
    # The row first: a row the database refuses leaves no file behind. The key names the
    # content, so a rollback after the upload leaves the row on the file it described.
    db.session.flush()
    storage().put_stream(caption.key, io.BytesIO(body), content_type="text/vtt; charset=utf-8")
    return caption


def caption_changes(course: Course) -> list[CaptionChange]:
    """The caption changes of a submitted course, newest first (unacknowledged ones on top)."""
    return list(
        db.session.scalars(
            sa.select(CaptionChange)
            .join(Lesson, Lesson.id == CaptionChange.lesson_id)
            .where(Lesson.course_id == course.id)
            .options(sa.orm.joinedload(CaptionChange.lesson))
            .order_by(CaptionChange.acknowledged_at.is_not(None), CaptionChange.id.desc())
        )
    )


def unacknowledged_caption_changes() -> dict[int, int]:
    """Course id -> the number of its caption changes no admin has acknowledged yet."""
    rows = db.session.execute(
        sa.select(Lesson.course_id, sa.func.count(CaptionChange.id))
        .join(Lesson, Lesson.id == CaptionChange.lesson_id)
        .where(CaptionChange.acknowledged_at.is_(None))
        .group_by(Lesson.course_id)
    )
    return {course_id: count for course_id, count in rows}


def acknowledge_caption_changes(course: Course, admin: User) -> int:
    """Mark every open caption change of the course as seen by this admin; how many were."""
    lessons = sa.select(Lesson.id).where(Lesson.course_id == course.id).scalar_subquery()
    result = db.session.execute(
        sa.update(CaptionChange)
        .where(CaptionChange.lesson_id.in_(lessons), CaptionChange.acknowledged_at.is_(None))
        .values(acknowledged_at=utcnow(), acknowledged_by_id=admin.id)
        .execution_options(synchronize_session=False)
    )
    changes = rowcount(result)
    if changes:
        audit.record_request(
            "course.caption_changes_acknowledged",
            subject_type="course",
            subject_id=course.id,
            detail={"changes": changes},
            actor=admin,
        )
    return changes


def set_cover(course: Course, data: bytes) -> None:
    require_editable(course)
    if len(data) > MAX_COVER_BYTES:
        raise PayloadTooLarge(
            _l("The cover image is larger than %(mb)d MB.", mb=MAX_COVER_BYTES // (1024 * 1024))
        )
    content_type = next((ct for magic, ct in COVER_MAGIC.items() if data.startswith(magic)), None)
    if content_type is None:
        raise Invalid(_l("The cover must be a JPEG or PNG image."), code="not_an_image")
    key = f"covers/{course.id}/{new_cover_name(content_type)}"
    storage().put_stream(key, io.BytesIO(data), content_type=content_type)
    course.cover_key = key


def new_cover_name(content_type: str) -> str:
    return uuid.uuid4().hex + (".jpg" if content_type == "image/jpeg" else ".png")
