"""Enrolment and server-authoritative study time: the one writer of study-time counters.

Every heartbeat is judged by `rules.credit` on the server's clock against what the server
already recorded for the lesson; the browser's account of time watched is never taken.
Credited time waits for a face check (`pending_s`); this module moves it to confirmed or voided
when the study workflow (`app/study/workflow.py`) reports the check's result. It asks for no
check and judges none itself: it says when one is due.
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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.courses.models import Course, CourseStatus, Lesson, LessonStatus
from app.db import lock_row, savepoint, utcnow
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

# The largest heartbeat sequence number accepted (a 32-bit column).
MAX_SEQ = 2**31 - 1
# A session that ended with time no check confirmed (the page was reloaded, the phone lost its
# connection, the trainee came back on another device) hands that time to the trainee's next
# session of the same lesson: the first check passed or failed within this many seconds of its
# last heartbeat decides it, as if the sessions were one. Later, it lapses.
CARRY_OVER_S = 1800.0


def clock() -> float:
    """The server's time in epoch seconds (tests put a controllable clock here)."""
    now: Callable[[], float] = current_app.extensions["veriskill.clock"]
    return now()


class Due:
    """Why a face check is due now (the kinds of check the workflow then opens)."""

    RANDOM = "random"  # the secret amount of study since the last check is reached
    CLOSING = "closing"  # the lesson is done, or its video ended, with time not yet confirmed


@dataclass(frozen=True)
class BeatOutcome:
    credited_s: float
    reason: str | None
    progress: LessonProgress
    completed: bool  # the lesson is complete (on confirmed time)
    due: str | None  # a `Due` kind: ask a face check now


@dataclass(frozen=True)
class Settled:
    """What a check's result did to the session's time."""

    seconds: float  # confirmed, voided or lapsed
    course_completed: bool  # the enrolment completed just now


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
    enrollment = Enrollment(
        trainee_id=user.id, course_id=course.id, programme_id=course.programme_id
    )
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
    return progress_of(enrollment.id, lesson.id, lock=lock)


def progress_of(enrollment_id: int, lesson_id: int, *, lock: bool = False) -> LessonProgress:
    """The lesson's progress row, created if missing; by ids, so a heartbeat need not load
    the enrolment to reach it."""
    query = sa.select(LessonProgress).where(
        LessonProgress.enrollment_id == enrollment_id, LessonProgress.lesson_id == lesson_id
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = db.session.scalar(query)
    if row is None:
        row = LessonProgress(enrollment_id=enrollment_id, lesson_id=lesson_id)
        db.session.add(row)
        db.session.flush()
    return row


def end_open_sessions(user: User) -> list[StudySession]:
    """End the trainee's open sessions (one device at a time); returns them, locked, so the
    workflow can close their checks and lapse their unconfirmed time."""
    # Serialise starts of one trainee: a second start waits here and then finds the first.
    lock_row(db.session, User, user.id)
    query = (
        sa.select(StudySession)
        .where(StudySession.trainee_id == user.id, StudySession.ended_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    ended = list(db.session.scalars(query))
    now = utcnow()
    for other in ended:
        other.ended_at = now
        other.end_reason = SessionEnd.SUPERSEDED
    db.session.flush()
    return ended


def open_session(
    user: User,
    lesson: Lesson,
    enrollment: Enrollment,
    *,
    next_check_after_s: float,
    user_agent: str = "",
    address: str = "",
) -> StudySession:
    """Open a session; call `end_open_sessions` first in the same transaction."""
    session = StudySession(
        enrollment_id=enrollment.id,
        lesson_id=lesson.id,
        trainee_id=user.id,
        user_agent=user_agent[:300],
        address=address[:64],
        next_check_after_s=next_check_after_s,
        opened_at=clock(),
    )
    try:
        with savepoint(db.session):
            db.session.add(session)
    except IntegrityError:
        # The unique index over open sessions: another start of this trainee won the race
        # (only where the row lock above is not available, as on SQLite).
        raise Conflict(
            _l("Studying was started on another device at the same moment; try again."),
            code="session_conflict",
        ) from None
    progress_for(enrollment, lesson)
    return session


def resume_at(progress: LessonProgress) -> float:
    """Where the player should resume: where it was, never beyond what was reached."""
    return min(progress.position_s, progress.furthest_s)


def session_for(user: User, session_id: int) -> StudySession:
    session = db.session.get(StudySession, session_id)
    if session is None or session.trainee_id != user.id:
        raise NotFound(_l("No such study session."))
    return session


def lock_session(session_id: int) -> StudySession:
    """The session row, locked for this transaction and read afresh under the lock: what was
    loaded before may be stale by the time the lock is granted."""
    session = _locked_session(session_id)
    if session is None:
        raise NotFound(_l("No such study session."))
    return session


def _locked_session(session_id: int) -> StudySession | None:
    """Lock, read and load the lesson in one statement where the database can (PostgreSQL:
    FOR UPDATE OF the session row only, never the lesson every learner shares); SQLite takes
    its write lock first (`lock_row`). Every heartbeat pays this, so it is one round trip."""
    query = (
        sa.select(StudySession)
        .where(StudySession.id == session_id)
        .options(joinedload(StudySession.lesson, innerjoin=True))
        .execution_options(populate_existing=True)
    )
    if db.session.get_bind().dialect.name == "sqlite":
        lock_row(db.session, StudySession, session_id)
    else:
        query = query.with_for_update(of=StudySession)
    return db.session.scalar(query)


def active_session(user: User, session_id: int) -> StudySession:
    """The trainee's session, locked; refused once it has ended."""
    session = _locked_session(session_id)
    if session is None or session.trainee_id != user.id:
        raise NotFound(_l("No such study session."))
    if not session.active:
        raise Conflict(
            _l("This study session has ended; the lesson was opened elsewhere."),
            code="session_ended",
            end_reason=session.end_reason.value if session.end_reason else None,
        )
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


def parse_beat(session: StudySession, data: dict[str, Any], *, at: float) -> rules.Heartbeat:
    """A heartbeat's body as the rules take it; refuses what is not what the API documents."""
    position = parse_position(data.get("position_s"), float(session.lesson.duration_s or 0))
    hidden = data.get("hidden", False)
    playing = data.get("playing", True)
    seq = data.get("seq")
    errors: dict[str, Any] = {
        name: _l("true or false.")
        for name, value in (("hidden", hidden), ("playing", playing))
        if not isinstance(value, bool)
    }
    if seq is not None and (
        isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ
    ):
        errors["seq"] = _l(
            "A whole number from 0 to %(n)d, one more for each heartbeat.", n=MAX_SEQ
        )
    if errors:
        raise Invalid(fields=errors)
    return rules.Heartbeat(at=at, position_s=position, hidden=hidden, playing=playing, seq=seq)


def _ready(progress: LessonProgress, duration_s: float) -> bool:
    """The lesson would be complete if its waiting time were confirmed."""
    return rules.is_complete(progress.coverage, progress.counted_s, duration_s)


def credit(session: StudySession, beat: rules.Heartbeat, *, held: bool) -> BeatOutcome:
    """Judge a heartbeat of a session locked by `active_session`; `held` while a face check
    waits for its answer (then nothing is credited and no stretch counts as watched)."""
    duration = float(session.lesson.duration_s or 0)
    progress = progress_of(session.enrollment_id, session.lesson_id, lock=True)
    state = rules.SessionState(
        last_at=session.last_at,
        last_position_s=session.last_position_s,
        furthest_s=progress.furthest_s,
        lesson_credited_s=progress.counted_s,
        duration_s=duration,
        last_active=session.last_active,
        last_seq=session.last_seq,
        opened_at=session.opened_at,
        credited_spans=_spans(session.credited_spans),
    )
    result = rules.credit(state, beat, heartbeat_s=current_app.config["HEARTBEAT_S"])
    new = result.new_state
    repeated = result.reason is rules.Reason.REPEATED
    session.last_at, session.last_position_s = new.last_at, new.last_position_s
    session.last_active, session.last_seq = new.last_active, new.last_seq
    if new.credited_spans != state.credited_spans and not held:
        session.credited_spans = json.dumps([list(span) for span in new.credited_spans])
    if not repeated:
        progress.position_s = min(beat.position_s, duration)
    credited = 0.0 if held else result.credited_s
    reason = result.reason
    if held and not repeated:
        reason = rules.Reason.CHECK_PENDING
    if credited:
        session.credited_s = round(session.credited_s + credited, 3)
        session.unverified_s = round(session.unverified_s + credited, 3)
        session.since_check_s = round(session.since_check_s + credited, 3)
        progress.credited_s = round(progress.credited_s + credited, 3)
        progress.pending_s = round(progress.pending_s + credited, 3)
    if not held:
        progress.furthest_s = new.furthest_s
        if result.covered:
            before = _spans(progress.covered)
            covered = rules.merge_intervals((*before, *result.covered))
            progress.covered = _spans_json(covered)
            progress.coverage = rules.coverage_after(
                progress.coverage, before, covered, result.covered[0], duration
            )
    due = None
    if not held and progress.completed_at is None:
        at_end = beat.position_s >= duration - rules.END_TOLERANCE_S and not beat.playing
        if _ready(progress, duration) or (at_end and progress.pending_s > 0):
            due = Due.CLOSING
    if not held and due is None and session.since_check_s >= session.next_check_after_s > 0:
        due = Due.RANDOM
    # The evidence row as a plain INSERT: nothing reads it back in this request, so it skips
    # the ORM's unit of work (object state, identity map, RETURNING of its id).
    db.session.execute(
        sa.insert(HeartbeatRecord).values(
            session_id=session.id,
            received_at=beat.at,
            seq=beat.seq,
            position_s=beat.position_s,
            hidden=beat.hidden,
            playing=beat.playing,
            credited_s=credited,
            reason=reason.value if reason else None,
        )
    )
    db.session.flush()
    completed = progress.completed_at is not None
    return BeatOutcome(credited, reason.value if reason else None, progress, completed, due)


def _spans(text: str) -> tuple[rules.Interval, ...]:
    return tuple((float(a), float(b)) for a, b in json.loads(text))


def _spans_json(spans: tuple[rules.Interval, ...]) -> str:
    return json.dumps([[round(a, 3), round(b, 3)] for a, b in spans])


def check_opened(session: StudySession) -> None:
    """A face check was asked: count the study before the next random one afresh, and hold
    the session's credit until it closes."""
    session.since_check_s = 0.0
    session.awaiting_check = True


def no_check_waiting(session: StudySession) -> None:
    """The session's latest check is closed (the workflow looked): heartbeats stop asking."""
    session.awaiting_check = False


def awaiting(session: StudySession) -> list[StudySession]:
    """The sessions whose waiting time a check of ``session`` decides, locked: the session
    itself, and the trainee's sessions of the same lesson that ended with time unconfirmed at
    most CARRY_OVER_S before now."""
    carried = (
        sa.select(StudySession)
        .where(
            StudySession.trainee_id == session.trainee_id,
            StudySession.enrollment_id == session.enrollment_id,
            StudySession.lesson_id == session.lesson_id,
            StudySession.id != session.id,
            StudySession.ended_at.is_not(None),
            StudySession.unverified_s > 0,
            sa.func.coalesce(StudySession.last_at, StudySession.opened_at, 0.0)
            >= clock() - CARRY_OVER_S,
        )
        .order_by(StudySession.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return [session, *db.session.scalars(carried)]


def confirm(session: StudySession, *, next_check_after_s: float) -> Settled:
    """A face check of the session passed: the time waiting for it counts, and the lesson (and
    with it the course) completes if that was all it lacked."""
    seconds = 0.0
    for each in awaiting(session):
        seconds += each.unverified_s
        progress = _move_pending(each, each.unverified_s)
    session.next_check_after_s = next_check_after_s
    session.awaiting_check = False
    lesson = session.lesson
    course_completed = False
    if progress.completed_at is None and rules.is_complete(
        progress.coverage, progress.verified_s, float(lesson.duration_s or 0)
    ):
        progress.completed_at = utcnow()
        db.session.flush()
        enrollment = db.session.get_one(Enrollment, session.enrollment_id)
        if enrollment.completed_at is None and summarize(enrollment)["completed"]:
            enrollment.completed_at = utcnow()
            course_completed = True
    return Settled(round(seconds, 3), course_completed)


def void(session: StudySession, *, next_check_after_s: float) -> Settled:
    """A face check of the session failed or went unanswered: the time waiting for it is taken
    back. Confirmed time is untouched, so nothing completed stops being complete."""
    seconds = 0.0
    for each in awaiting(session):
        seconds += each.unverified_s
        _take_back(each)
    session.next_check_after_s = next_check_after_s
    session.awaiting_check = False
    return Settled(round(seconds, 3), False)


def lapse_stale(user: User) -> None:
    """Take back the waiting time of the trainee's ended sessions that no check decided
    within CARRY_OVER_S."""
    stale = sa.select(StudySession).where(
        StudySession.trainee_id == user.id,
        StudySession.ended_at.is_not(None),
        StudySession.unverified_s > 0,
        sa.func.coalesce(StudySession.last_at, StudySession.opened_at, 0.0)
        < clock() - CARRY_OVER_S,
    )
    for session in db.session.scalars(stale.with_for_update()):
        session.lapsed_s = round(session.lapsed_s + session.unverified_s, 3)
        _take_back(session)


def _take_back(session: StudySession) -> None:
    seconds = session.unverified_s
    progress = _move_pending(session, seconds)
    progress.voided_s = round(min(progress.credited_s, progress.voided_s + seconds), 3)


def _move_pending(session: StudySession, seconds: float) -> LessonProgress:
    """Take a session's waiting time off its lesson's `pending_s`; the caller says where to."""
    progress = progress_of(session.enrollment_id, session.lesson_id, lock=True)
    progress.pending_s = round(max(0.0, progress.pending_s - seconds), 3)
    session.unverified_s = 0.0
    return progress


def progress_rows(enrollments: list[Enrollment]) -> dict[int, dict[int, LessonProgress]]:
    """The progress rows of many enrolments in one query: enrolment id -> lesson id -> row."""
    rows: dict[int, dict[int, LessonProgress]] = {e.id: {} for e in enrollments}
    if rows:
        for row in db.session.scalars(
            sa.select(LessonProgress).where(LessonProgress.enrollment_id.in_(rows))
        ):
            rows[row.enrollment_id][row.lesson_id] = row
    return rows


def summarize(
    enrollment: Enrollment, rows: dict[int, LessonProgress] | None = None
) -> dict[str, Any]:
    """Credited time and completion per lesson and for the whole course (from `rows`, the
    enrolment's progress rows by lesson, when the caller loaded them for many enrolments)."""
    if rows is None:
        rows = progress_rows([enrollment])[enrollment.id]
    lessons: list[dict[str, Any]] = []
    for lesson in enrollment.course.lessons:
        row = rows.get(lesson.id)
        duration = float(lesson.duration_s or 0)
        credited = row.credited_s if row else 0.0
        verified = row.verified_s if row else 0.0
        pending = row.pending_s if row else 0.0
        coverage = row.coverage if row else 0.0
        lessons.append(
            {
                "id": lesson.id,
                "title": lesson.title,
                "position": lesson.position,
                "duration_s": duration,
                "credited_s": round(credited, 3),
                "verified_s": round(verified, 3),
                "pending_s": round(pending, 3),
                "voided_s": round(row.voided_s, 3) if row else 0.0,
                "coverage": round(coverage, 4),
                "completed": bool(row and row.completed_at),
                "resume_s": resume_at(row) if row else 0.0,
                "required_s": round(rules.COMPLETE_CREDIT * duration, 3),
                "needed_s": round(max(0.0, rules.COMPLETE_CREDIT * duration - verified), 1),
            }
        )
    credited = sum(item["credited_s"] for item in lessons)
    verified = sum(item["verified_s"] for item in lessons)
    pending = sum(item["pending_s"] for item in lessons)
    required = sum(item["required_s"] for item in lessons)
    return {
        "lessons": lessons,
        "credited_s": round(credited, 3),
        "verified_s": round(verified, 3),
        "pending_s": round(pending, 3),
        "voided_s": round(sum(item["voided_s"] for item in lessons), 3),
        "required_s": round(required, 3),
        "completed": bool(lessons) and all(item["completed"] for item in lessons),
    }


# Reasons that cost the trainee nothing worth explaining: an anchor, a stalled player, a full
# lesson, a heartbeat the network delivered twice, a video paused for a face check.
UNREMARKABLE = (
    rules.Reason.FIRST_HEARTBEAT,
    rules.Reason.NO_PROGRESS,
    rules.Reason.LESSON_FULL,
    rules.Reason.REPEATED,
    rules.Reason.CHECK_PENDING,
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
    return {str(reason): int(count) for reason, count in db.session.execute(query).all()}
