"""How study becomes money: the one place to read to learn it.

A trainee opens a lesson (a study session with a sign-in face check), the player reports a
heartbeat every HEARTBEAT_S seconds, and the server asks face checks at moments it alone
chooses. Each use case below runs inside its caller's transaction (the API handler or the job
commits once) and calls the domains in this order:

1. learning, the only writer of study time: it locks the session and reads it afresh, credits
   a heartbeat by `app.learning.rules`, and keeps what it credited as *pending* until a face
   check decides it: a pass *confirms* it, a failure or an unanswered check *voids* it. A
   session that ends first hands it to the next session of the lesson, whose first check
   decides it if it comes within `CARRY_OVER_S`; after that it *lapses*. Only confirmed time
   completes a lesson, so nothing is complete, eligible or certified on time no check
   confirmed; when a lesson would be done but for pending time, or its video ends with time
   pending, learning says a closing check is due.
2. verification asks the checks and judges their answers (in the request, or in a job worker
   through `judge_queued_answer`); it never touches study time.
3. subsidy settles the decision every time a check closes or the course completes: a grant
   and a certificate for an eligible enrolment, the certificate revoked at once when the
   enrolment stops being eligible (rejected, sent to review, or no longer complete).

Locks are taken in one order (session, then lesson progress, then check), so heartbeats, answers
and worker verdicts of one session wait for each other instead of crossing; see README,
"Study time".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from app.errors import AppError, Invalid
from app.extensions import db
from app.identity.models import User
from app.learning import service as learning
from app.learning.models import Enrollment, LessonProgress, StudySession
from app.subsidy import service as subsidy
from app.verification import service as verification
from app.verification.models import (
    Check,
    CheckAnswer,
    CheckKind,
    CheckStatus,
    FlagStatus,
    IdentityFlag,
)


@dataclass(frozen=True)
class Started:
    session: StudySession
    check: Check
    progress: LessonProgress


@dataclass(frozen=True)
class Beat:
    outcome: learning.BeatOutcome
    check: Check | None  # a face check waiting for its answer


@dataclass(frozen=True)
class Answered:
    """An answer judged in the request (``verdict``), or queued for a worker (``queued``)."""

    check: Check
    verdict: verification.Verdict | None = None
    voided_s: float = 0.0
    queued: CheckAnswer | None = None


def start_session(user: User, lesson_id: int, *, user_agent: str, address: str) -> Started:
    """Open a lesson on this device, ending the trainee's sessions elsewhere, and ask the
    sign-in check."""
    lesson, enrollment = learning.studyable_lesson(user, lesson_id)
    verification.require_verified_identity(user)
    for ended in learning.end_open_sessions(user):
        _session_ended(ended)
    learning.lapse_stale(user)
    session = learning.open_session(
        user,
        lesson,
        enrollment,
        next_check_after_s=verification.next_check_after_s(),
        user_agent=user_agent,
        address=address,
    )
    subsidy.mark_stale(enrollment.id)  # a queued enrolment's evidence lists sessions
    progress = learning.progress_for(enrollment, lesson)
    check = _ask(session, CheckKind.SIGN_IN, learning.resume_at(progress))
    return Started(session, check, progress)


def heartbeat(user: User, session_id: int, data: dict) -> Beat:
    """Credit one heartbeat. An expired check fails first; while a check waits for its answer
    nothing is credited; a check learning says is due is asked now."""
    session = learning.active_session(user, session_id)
    beat = learning.parse_beat(session, data, at=learning.clock())
    # Most beats come while no check waits: the locked session row says so, and the checks
    # are looked up only when one was asked and not yet closed.
    check = verification.latest_check(session.id) if session.awaiting_check else None
    if check is not None and verification.due_to_expire(check):
        _close(session, check, passed=False, code="expired", judged=None)
    held = check is not None and check.status is CheckStatus.PENDING
    if session.awaiting_check and not held:
        learning.no_check_waiting(session)
    outcome = learning.credit(session, beat, held=held)
    if outcome.due is not None:
        check = _ask(session, CheckKind(outcome.due), beat.position_s)
        held = True
    return Beat(outcome, check if held else None)


def expire_check_if_due(user: User, check_id: int) -> Check:
    """Fail the check now if its window closed unanswered; the caller commits that before an
    answer is refused as too late."""
    check = verification.check_for(user, check_id)
    session = learning.lock_session(check.session_id)
    check = verification.lock_check(check.id)
    if verification.due_to_expire(check):
        _close(session, check, passed=False, code="expired", judged=None)
    return check


def answer_check(user: User, check_id: int, frames: list[bytes]) -> Answered:
    """Judge an answer here, or keep it for a worker when CHECKS_IN_WORKER (the caller commits
    and then enqueues `VERIFY_CHECK` with the answer's id)."""
    check = verification.check_for(user, check_id)
    if verification.checks_in_worker():
        learning.lock_session(check.session_id)
        check = verification.lock_check(check.id)
        return Answered(check, queued=verification.queue_answer(user, check, frames))
    # The face work first, holding no lock: on SQLite a lock is the whole database's.
    compared = verification.compare(user, check, frames)
    session = learning.lock_session(check.session_id)
    check = verification.lock_check(check.id)
    verdict = verification.judge(user, check, frames, compared, lesson_id=session.lesson_id)
    return Answered(check, verdict, _apply(session, check, verdict))


def judge_queued_answer(answer_id: int) -> CheckAnswer | None:
    """A worker's turn at a queued answer, judged as a request would judge it. Returns the
    answer whose waiting frames may now be deleted (after the caller's commit), or None."""
    answer = verification.take_answer(answer_id)
    if answer is None:  # judged by an earlier run, or abandoned
        return db.session.get(CheckAnswer, answer_id)
    check = db.session.get_one(Check, answer.check_id)
    user = db.session.get_one(User, check.user_id)
    frames = verification.answer_frames(answer)
    try:
        compared = verification.compare(user, check, frames)
        session = learning.lock_session(check.session_id)
        check = verification.lock_check(check.id)
        verdict = verification.judge(user, check, frames, compared, lesson_id=session.lesson_id)
    except AppError as refusal:  # raised before judge changed anything
        verification.record_refusal(answer, check, refusal)
    else:
        verification.record_verdict(answer, verdict, voided_s=_apply(session, check, verdict))
    return answer


# --- identity decisions that move money ------------------------------------------------------


def resolve_flag(flag_id: int, outcome: Any, note: Any, *, auditor: User | None) -> IdentityFlag:
    """Close a duplicate-identity flag (``cleared`` or ``confirmed``), then settle the
    trainee's completed enrolments: the flag may have been all that held them. ``auditor``
    is None from the command line."""
    if auditor is not None:
        subsidy.require_staff(auditor)
    try:
        status = FlagStatus(outcome)
    except ValueError:
        raise Invalid(fields={"outcome": _l("cleared or confirmed.")}) from None
    flag = verification.resolve_flag(flag_id, status, note, staff=auditor)
    subsidy.settle_trainee(flag.user_id)
    return flag


def decide_reference(reference_id: int, outcome: Any, reason: Any, *, auditor: User) -> Any:
    """Approve or reject a re-enrolled face from the desk, with a reason that is kept."""
    subsidy.require_staff(auditor)
    if outcome not in ("approve", "reject"):
        raise Invalid(fields={"outcome": _l("approve or reject.")})
    text = subsidy.given_reason(reason)
    return verification.decide_reference(
        reference_id, approve=outcome == "approve", staff=auditor, note=text
    )


# --- steps ------------------------------------------------------------------------------------


def _ask(session: StudySession, kind: CheckKind, position_s: float | None) -> Check:
    check = verification.open_check(session.id, session.trainee_id, kind, position_s)
    learning.check_opened(session)
    return check


def _apply(session: StudySession, check: Check, verdict: verification.Verdict) -> float:
    """Close the check a verdict decided; returns the seconds it voided."""
    if verdict.retry:
        return 0.0
    code = None if verdict.passed else verdict.code
    settled = _close(session, check, passed=verdict.passed, code=code, judged=verdict.judged)
    return 0.0 if verdict.passed else settled.seconds


def _close(
    session: StudySession,
    check: Check,
    *,
    passed: bool,
    code: str | None,
    judged: verification.Judged | None,
) -> learning.Settled:
    """A check's final result: confirm or void the session's pending time, then settle."""
    following = verification.next_check_after_s()
    if passed:
        settled = learning.confirm(session, next_check_after_s=following)
    else:
        settled = learning.void(session, next_check_after_s=following)
    verification.close_check(
        check, passed=passed, code=code, judged=judged, settled_s=settled.seconds
    )
    enrollment = db.session.get_one(Enrollment, session.enrollment_id)
    if settled.course_completed:
        subsidy.on_completed(enrollment)
    else:
        subsidy.settle(enrollment)
    return settled


def _session_ended(session: StudySession) -> None:
    """A session ended by a newer one: its unanswered check fails if its window had closed,
    else is cancelled; its waiting time carries over to the next check of the lesson (see
    `learning.CARRY_OVER_S`). A check a worker is judging is left to its verdict, which then
    confirms or voids the time as usual."""
    check = verification.latest_check(session.id)
    if check is None or check.status is not CheckStatus.PENDING or verification.judging(check):
        return
    if verification.due_to_expire(check):
        _close(session, check, passed=False, code="expired", judged=None)
    else:
        verification.cancel_check(check, code="session_ended")
