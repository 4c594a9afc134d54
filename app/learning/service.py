"""Enrolment and server-authoritative study time.

Every heartbeat is judged by `rules.credit` on the server's clock against what the server
already recorded for the lesson; the browser's account of time watched is never taken.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from app.courses.models import Course, CourseStatus, Lesson, LessonStatus
from app.db import like_pattern, utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.identity.models import Role, User
from app.learning import rules
from app.learning.models import (
    Enrollment,
    HeartbeatRecord,
    LessonProgress,
    SessionEnd,
    StudySession,
)
from app.verification import service as verification
from app.verification.models import Check, CheckKind, CheckStatus


def clock() -> float:
    """The server's time in epoch seconds (tests put a controllable clock here)."""
    now: Callable[[], float] = current_app.extensions["veriskill.clock"]
    return now()


@dataclass(frozen=True)
class BeatOutcome:
    credited_s: float
    reason: str | None
    progress: LessonProgress
    completed: bool
    check: Check | None  # a face check waiting for an answer
    enrollment: Enrollment
    course_completed: bool  # this heartbeat completed the whole course


def record_void(session: StudySession, seconds: float) -> None:
    """Take back credited time of the session's lesson after a failed or missed check."""
    if seconds <= 0:
        return
    enrollment = db.session.get(Enrollment, session.enrollment_id)
    progress = progress_for(enrollment, session.lesson, lock=True)
    progress.voided_s = round(min(progress.credited_s, progress.voided_s + seconds), 3)
    if progress.completed_at and not rules.is_complete(
        progress.coverage, progress.verified_s, float(session.lesson.duration_s or 0)
    ):
        progress.completed_at = None
    if not summarize(enrollment)["completed"]:
        enrollment.completed_at = None


def _trainee(user: User) -> None:
    if user.role is not Role.TRAINEE:
        raise Forbidden(_l("Only trainees study courses."))


def published_course(course_id: int) -> Course:
    course = db.session.get(Course, course_id)
    if course is None or course.status is not CourseStatus.PUBLISHED:
        raise NotFound(_l("No such course is open for study."))
    return course


def enroll(user: User, course_id: int) -> tuple[Enrollment, bool]:
    """The trainee's enrolment in a published course, and whether it was created now."""
    _trainee(user)
    course = published_course(course_id)
    existing = find_enrollment(user, course.id)
    if existing is not None:
        return existing, False
    enrollment = Enrollment(trainee_id=user.id, course_id=course.id)
    db.session.add(enrollment)
    db.session.flush()
    return enrollment, True


def find_enrollment(user: User, course_id: int) -> Enrollment | None:
    return db.session.scalar(
        sa.select(Enrollment).where(
            Enrollment.trainee_id == user.id, Enrollment.course_id == course_id
        )
    )


def enrollments_of(user: User) -> list[Enrollment]:
    query = sa.select(Enrollment).where(Enrollment.trainee_id == user.id)
    return list(db.session.scalars(query.order_by(Enrollment.created_at.desc())))


def enrollment_for(user: User, enrollment_id: int) -> Enrollment:
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None or (enrollment.trainee_id != user.id and not user.is_staff):
        raise NotFound(_l("No such enrolment."))
    return enrollment


def studyable_lesson(user: User, lesson_id: int) -> tuple[Lesson, Enrollment]:
    """A ready lesson of a published course the trainee is enrolled in."""
    _trainee(user)
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.course.status is not CourseStatus.PUBLISHED:
        raise NotFound(_l("No such lesson is open for study."))
    enrollment = find_enrollment(user, lesson.course_id)
    if enrollment is None:
        raise Forbidden(_l("Enrol in the course first."), code="not_enrolled")
    if lesson.status is not LessonStatus.READY or not lesson.duration_s:
        raise Conflict(_l("This lesson's video is not ready."), code="lesson_not_ready")
    return lesson, enrollment


def progress_for(enrollment: Enrollment, lesson: Lesson, *, lock: bool = False) -> LessonProgress:
    query = sa.select(LessonProgress).where(
        LessonProgress.enrollment_id == enrollment.id, LessonProgress.lesson_id == lesson.id
    )
    row = db.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        row = LessonProgress(enrollment_id=enrollment.id, lesson_id=lesson.id)
        db.session.add(row)
        db.session.flush()
    return row


def start_session(
    user: User, lesson_id: int, *, user_agent: str = "", address: str = ""
) -> StudySession:
    """Open a session; any other open session of this trainee ends (one device at a time)."""
    lesson, enrollment = studyable_lesson(user, lesson_id)
    verification.require_verified_identity(user)
    now = utcnow()
    open_sessions = sa.select(StudySession).where(
        StudySession.trainee_id == user.id, StudySession.ended_at.is_(None)
    )
    for other in db.session.scalars(open_sessions.with_for_update()):
        other.ended_at = now
        other.end_reason = SessionEnd.SUPERSEDED
    session = StudySession(
        enrollment_id=enrollment.id,
        lesson_id=lesson.id,
        trainee_id=user.id,
        user_agent=user_agent[:300],
        address=address[:64],
    )
    db.session.add(session)
    progress_for(enrollment, lesson)
    db.session.flush()
    session.next_check_after_s = verification.next_check_after_s()
    progress = progress_for(enrollment, lesson)
    verification.open_check(
        session, CheckKind.SIGN_IN, min(progress.position_s, progress.furthest_s)
    )
    return session


def session_for(user: User, session_id: int) -> StudySession:
    session = db.session.get(StudySession, session_id)
    if session is None or session.trainee_id != user.id:
        raise NotFound(_l("No such study session."))
    return session


def parse_position(raw: Any, duration_s: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise Invalid(fields={"position_s": _l("The playback position in seconds, a number.")})
    position = float(raw)
    if not math.isfinite(position) or position < 0 or position > duration_s + rules.END_TOLERANCE_S:
        raise Invalid(
            fields={"position_s": _l("A position from 0 to the lesson's length, in seconds.")}
        )
    return position


def heartbeat(user: User, session_id: int, data: dict[str, Any]) -> BeatOutcome:
    session = session_for(user, session_id)
    if not session.active:
        raise Conflict(
            _l("This study session has ended; the lesson was opened elsewhere."),
            code="session_ended",
            end_reason=session.end_reason.value if session.end_reason else None,
        )
    lesson = session.lesson
    duration = float(lesson.duration_s or 0)
    position = parse_position(data.get("position_s"), duration)
    hidden = data.get("hidden", False)
    playing = data.get("playing", True)
    bad = [
        name
        for name, value in (("hidden", hidden), ("playing", playing))
        if not isinstance(value, bool)
    ]
    if bad:
        raise Invalid(fields={name: _l("true or false.") for name in bad})
    enrollment = db.session.get(Enrollment, session.enrollment_id)
    # Heartbeats of one lesson are judged one at a time, against the latest record.
    db.session.execute(
        sa.select(StudySession.id).where(StudySession.id == session.id).with_for_update()
    )
    progress = progress_for(enrollment, lesson, lock=True)
    # Face checks: an expired one fails now; a failed one is followed by a new one; while one
    # waits for its answer nothing is credited.
    check = verification.latest_check(session)
    record_void(session, verification.expire_if_due(session, check))
    if check is not None and check.status is CheckStatus.FAILED:
        check = verification.open_check(session, CheckKind.RANDOM, position)
    held = check is not None and check.status is CheckStatus.PENDING
    state = rules.SessionState(
        last_at=session.last_at,
        last_position_s=session.last_position_s,
        furthest_s=progress.furthest_s,
        lesson_credited_s=progress.verified_s,
        duration_s=duration,
        last_active=session.last_active,
    )
    now = clock()
    result = rules.credit(
        state,
        rules.Heartbeat(at=now, position_s=position, hidden=hidden, playing=playing),
        heartbeat_s=current_app.config["HEARTBEAT_S"],
    )
    new = result.new_state
    session.last_at, session.last_position_s = new.last_at, new.last_position_s
    session.last_active = new.last_active
    progress.position_s = position
    credited = 0.0 if held else result.credited_s
    reason = "check_pending" if held else (result.reason.value if result.reason else None)
    if credited:
        session.credited_s = round(session.credited_s + credited, 3)
        session.unverified_s = round(session.unverified_s + credited, 3)
        session.since_check_s = round(session.since_check_s + credited, 3)
        progress.credited_s = round(progress.credited_s + credited, 3)
    progress.furthest_s = new.furthest_s if not held else progress.furthest_s
    if result.covered and not held:
        covered = rules.merge_intervals(
            [tuple(span) for span in json.loads(progress.covered)] + list(result.covered)
        )
        progress.covered = json.dumps([[round(a, 3), round(b, 3)] for a, b in covered])
        progress.coverage = rules.coverage(rules.buckets_for(covered, duration), duration)
    if not held and session.since_check_s >= session.next_check_after_s > 0:
        check = verification.open_check(session, CheckKind.RANDOM, position)
        held = True
    completed = rules.is_complete(progress.coverage, progress.verified_s, duration)
    course_completed = False
    if completed and progress.completed_at is None:
        progress.completed_at = utcnow()
        db.session.flush()
        # Only a lesson completing now can complete the course: no summary on every heartbeat.
        if enrollment.completed_at is None and summarize(enrollment)["completed"]:
            enrollment.completed_at = utcnow()
            course_completed = True
    db.session.add(
        HeartbeatRecord(
            session_id=session.id,
            received_at=now,
            position_s=position,
            hidden=hidden,
            playing=playing,
            credited_s=credited,
            reason=reason,
        )
    )
    db.session.flush()
    return BeatOutcome(
        credited, reason, progress, completed, check if held else None, enrollment, course_completed
    )


def summarize(enrollment: Enrollment) -> dict[str, Any]:
    """Credited time and completion per lesson and for the whole course."""
    rows = {
        row.lesson_id: row
        for row in db.session.scalars(
            sa.select(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id)
        )
    }
    lessons = []
    for lesson in enrollment.course.lessons:
        row = rows.get(lesson.id)
        duration = float(lesson.duration_s or 0)
        credited = row.credited_s if row else 0.0
        verified = row.verified_s if row else 0.0
        coverage = row.coverage if row else 0.0
        lessons.append(
            {
                "id": lesson.id,
                "title": lesson.title,
                "position": lesson.position,
                "duration_s": duration,
                "credited_s": round(credited, 3),
                "verified_s": round(verified, 3),
                "coverage": round(coverage, 4),
                "completed": bool(row and row.completed_at),
                "resume_s": min(row.position_s, row.furthest_s) if row else 0.0,
                "needed_s": round(max(0.0, rules.COMPLETE_CREDIT * duration - verified), 1),
            }
        )
    credited = sum(item["credited_s"] for item in lessons)
    verified = sum(item["verified_s"] for item in lessons)
    required = sum(rules.COMPLETE_CREDIT * item["duration_s"] for item in lessons)
    return {
        "lessons": lessons,
        "credited_s": round(credited, 3),
        "verified_s": round(verified, 3),
        "required_s": round(required, 3),
        "completed": bool(lessons) and all(item["completed"] for item in lessons),
    }


# Reasons that cost the trainee nothing worth explaining: an anchor, a stalled player, a full
# lesson.
UNREMARKABLE = (
    rules.Reason.FIRST_HEARTBEAT,
    rules.Reason.NO_PROGRESS,
    rules.Reason.LESSON_FULL,
)


def reasons_summary(enrollment: Enrollment) -> dict[str, int]:
    """How often heartbeats earned less than the time that passed, by reason."""
    query = (
        sa.select(HeartbeatRecord.reason, sa.func.count())
        .join(StudySession, HeartbeatRecord.session_id == StudySession.id)
        .where(
            StudySession.enrollment_id == enrollment.id,
            HeartbeatRecord.reason.is_not(None),
            HeartbeatRecord.reason.not_in([reason.value for reason in UNREMARKABLE]),
        )
        .group_by(HeartbeatRecord.reason)
    )
    return dict(db.session.execute(query).all())


def published_courses(q: str = "", occupation_prefix: str | None = None) -> list[Course]:
    query = sa.select(Course).where(Course.status == CourseStatus.PUBLISHED)
    if q.strip():
        query = query.where(Course.title.like(like_pattern(q.strip()), escape="\\"))
    if occupation_prefix:
        query = query.where(
            Course.occupation_code.like(like_pattern(occupation_prefix, prefix=True), escape="\\")
        )
    return list(db.session.scalars(query.order_by(Course.published_at.desc())))
