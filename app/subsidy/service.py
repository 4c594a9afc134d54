"""Subsidy decisions: gather the evidence, apply the rules, record what auditors decide.

The status of an enrolment is computed from the records every time it is asked for, never
stored, so it cannot drift from the evidence. What is stored are the facts only people or
chance add: decisions with their reasons, appeals, and the one spot-check draw.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload

from app.audit import service as audit
from app.catalog.models import Occupation
from app.certificates import service as certificates
from app.courses.models import Course, CourseLevel
from app.db import lock_row, utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.identity.models import User
from app.jobs import schedule
from app.learning.models import Enrollment, HeartbeatRecord, LessonProgress, StudySession
from app.learning.rules import Reason as BeatReason
from app.notifications import service as notifications
from app.subsidy import queue, rules
from app.subsidy.models import (
    Action,
    Appeal,
    Decision,
    QueueEntry,
    SpotCheck,
    SubsidyStandard,
)
from app.verification.models import (
    Check,
    CheckStatus,
    Evidence,
    EvidenceKind,
    FlagStatus,
    IdentityFlag,
)

MAX_REASON = 2000
# Heartbeats whose position ran ahead of the time that passed, or of what was watched.
SKIP_REASONS = (BeatReason.TOO_FAST.value, BeatReason.AHEAD_OF_FURTHEST.value)

# What each reason code means, for people. Evidence values fill the placeholders.
REASON_MESSAGES = {
    "complete": _l("Every lesson is complete on verified study time."),
    "lessons_incomplete": _l("Some lessons are not complete yet."),
    "checks_passed": _l("Face checks passed: %(count)d."),
    "check_cleared": _l("The face check of %(when)s failed, and an auditor cleared it."),
    "check_mismatch": _l("The face check of %(when)s showed a different person."),
    "check_replay": _l("The face check of %(when)s was answered with a picture used before."),
    "check_no_face": _l("The face check of %(when)s showed no face."),
    "check_multiple_faces": _l("The face check of %(when)s showed more than one face."),
    "check_liveness_failed": _l("The face check of %(when)s did not show a live person."),
    "check_expired": _l("The face check of %(when)s was not answered in time."),
    "duplicate_identity": _l("The enrolled face matches another trainee's."),
    "possible_duplicate": _l(
        "The enrolled face resembles another trainee's; an auditor compares them."
    ),
    "spot_check": _l("Chosen at random for a spot check by an auditor."),
    "appealed": _l("The trainee appealed against the rejection."),
    "rejection_proposed": _l("An auditor rejected this; a second auditor must confirm it."),
    "approved": _l("Approved by an auditor."),
    "rejected": _l("Rejected by an auditor."),
    "skipped_ahead": _l("The player reported skipping ahead; the skipped parts earned nothing."),
    "no_standard": _l("No subsidy standard is set for this occupation and level."),
}


def reason_json(reason: rules.Reason) -> dict[str, Any]:
    template = REASON_MESSAGES.get(reason.code)
    values = {"count": len(reason.evidence.get("checks", [])), **reason.evidence}
    if "at" in reason.evidence:  # a check by when it was, not by its number
        values["when"] = format_datetime(datetime.fromisoformat(reason.evidence["at"]), "short")
    message = str(template) % values if template is not None else reason.code
    return {"code": reason.code, "message": message, "evidence": reason.evidence}


# --- facts --------------------------------------------------------------------------------


def facts_of(enrollments: list[Enrollment]) -> dict[int, rules.Facts]:
    """The rules' inputs for many enrolments in a fixed number of queries."""
    ids = [e.id for e in enrollments]
    if not ids:
        return {}
    progress: dict[int, dict[int, LessonProgress]] = defaultdict(dict)
    for row in db.session.scalars(
        sa.select(LessonProgress).where(LessonProgress.enrollment_id.in_(ids))
    ):
        progress[row.enrollment_id][row.lesson_id] = row
    sessions: dict[int, list[int]] = defaultdict(list)
    session_enrollment = {}
    for session_id, enrollment_id in db.session.execute(
        sa.select(StudySession.id, StudySession.enrollment_id)
        .where(StudySession.enrollment_id.in_(ids))
        .order_by(StudySession.id)
    ):
        sessions[enrollment_id].append(session_id)
        session_enrollment[session_id] = enrollment_id
    decisions: dict[int, list[Decision]] = defaultdict(list)
    for decision in db.session.scalars(
        sa.select(Decision).where(Decision.enrollment_id.in_(ids)).order_by(Decision.id)
    ):
        decisions[decision.enrollment_id].append(decision)
    cleared = {d.check_id: d.id for ds in decisions.values() for d in ds if d.check_id}
    checks: dict[int, list[rules.CheckFact]] = defaultdict(list)
    for check in db.session.scalars(
        sa.select(Check).where(Check.session_id.in_(session_enrollment)).order_by(Check.id)
    ):
        passed = {CheckStatus.PASSED: True, CheckStatus.FAILED: False}.get(check.status)
        checks[session_enrollment[check.session_id]].append(
            rules.CheckFact(
                id=check.id,
                session_id=check.session_id,
                passed=passed,
                code=check.code,
                score=check.score,
                model=check.model,
                at=check.answered_at or check.expires_at,
                cleared_by=cleared.get(check.id),
            )
        )
    trainees = {e.trainee_id for e in enrollments}
    flags: dict[int, list[rules.FlagFact]] = defaultdict(list)
    for flag in db.session.scalars(
        sa.select(IdentityFlag).where(IdentityFlag.user_id.in_(trainees)).order_by(IdentityFlag.id)
    ):
        confirmed = flag.status is FlagStatus.CONFIRMED
        flags[flag.user_id].append(
            rules.FlagFact(
                id=flag.id,
                code=flag.code,
                open=flag.status is FlagStatus.OPEN,
                confirmed=confirmed,
                score=flag.score,
                model=flag.model,
                at=(flag.resolved_at if confirmed else None) or flag.created_at,
            )
        )
    appeals: dict[int, list[rules.AppealFact]] = defaultdict(list)
    for appeal in db.session.scalars(
        sa.select(Appeal).where(Appeal.enrollment_id.in_(ids)).order_by(Appeal.id)
    ):
        appeals[appeal.enrollment_id].append(
            rules.AppealFact(appeal.id, appeal.rejection_id, appeal.created_at)
        )
    spot = set(
        db.session.scalars(
            sa.select(SpotCheck.enrollment_id).where(
                SpotCheck.enrollment_id.in_(ids), SpotCheck.selected.is_(True)
            )
        )
    )
    skipped: dict[int, list[int]] = defaultdict(list)
    for (session_id,) in db.session.execute(
        sa.select(HeartbeatRecord.session_id)
        .where(
            HeartbeatRecord.session_id.in_(session_enrollment),
            HeartbeatRecord.reason.in_(SKIP_REASONS),
        )
        .distinct()
        .order_by(HeartbeatRecord.session_id)
    ):
        skipped[session_enrollment[session_id]].append(session_id)

    result = {}
    for enrollment in enrollments:
        rows = progress[enrollment.id]
        lessons = enrollment.course.lessons
        verified = sum(row.verified_s for row in rows.values())
        result[enrollment.id] = rules.Facts(
            complete=enrollment.completed_at is not None,
            incomplete_lessons=[
                lesson.id
                for lesson in lessons
                if lesson.id not in rows or rows[lesson.id].completed_at is None
            ],
            verified_s=round(verified, 3),
            sessions=sessions[enrollment.id],
            checks=checks[enrollment.id],
            flags=flags[enrollment.trainee_id],
            decisions=[
                rules.DecisionFact(d.id, d.action.value, d.decided_at, d.reason, d.decided_by)
                for d in decisions[enrollment.id]
            ],
            appeals=appeals[enrollment.id],
            spot_check=enrollment.id in spot,
            skipped_sessions=skipped[enrollment.id],
            second_auditor=current_app.config["REJECTION_NEEDS_SECOND_AUDITOR"],
        )
    return result


def facts_for(enrollment: Enrollment) -> rules.Facts:
    return facts_of([enrollment])[enrollment.id]


def assess(enrollment: Enrollment) -> rules.Assessment:
    return rules.assess(facts_for(enrollment))


# --- standards ----------------------------------------------------------------------------


def standards_of(courses: list[Course]) -> dict[int, SubsidyStandard | None]:
    """Each course's standard: its occupation's at its level, else the occupation's general
    one (None when neither exists). One query for any number of courses."""
    rows: dict[str, list[SubsidyStandard]] = defaultdict(list)
    codes = {course.occupation_code for course in courses}
    for row in db.session.scalars(
        sa.select(SubsidyStandard).where(SubsidyStandard.occupation_code.in_(codes))
    ):
        rows[row.occupation_code].append(row)
    found: dict[int, SubsidyStandard | None] = {}
    for course in courses:
        candidates = rows[course.occupation_code]
        exact = [row for row in candidates if row.level is not None and row.level == course.level]
        general = [row for row in candidates if row.level is None]
        found[course.id] = next(iter(exact or general), None)
    return found


def standard_for(course: Course) -> SubsidyStandard | None:
    return standards_of([course])[course.id]


def standards() -> list[SubsidyStandard]:
    query = (
        sa.select(SubsidyStandard)
        .options(selectinload(SubsidyStandard.occupation))
        .order_by(SubsidyStandard.occupation_code, SubsidyStandard.level)
    )
    return list(db.session.scalars(query))


def parse_amount(raw: Any) -> Decimal:
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0 or amount > Decimal("100000"):
        raise Invalid(fields={"amount_yuan": _l("An amount in yuan from 0 to 100000.")})
    if amount != amount.quantize(Decimal("0.01")):
        raise Invalid(fields={"amount_yuan": _l("At most two decimal places (fen).")})
    return amount.quantize(Decimal("0.01"))


def set_standard(
    occupation_code: str, level: str | None, amount: Any, *, staff: User | None
) -> SubsidyStandard:
    """Create or change the amount paid for an occupation (at a level, or at any level)."""
    code = (occupation_code or "").strip()
    occupation = db.session.get(Occupation, code) if code else None
    errors = {}
    if occupation is None or occupation.level != 4:
        errors["occupation_code"] = _l("An occupation code from the catalogue, like 4-10-01-06.")
    chosen = None
    if level:
        try:
            chosen = CourseLevel(level)
        except ValueError:
            errors["level"] = _l("One of the national qualification levels, or empty for all.")
    try:
        value = parse_amount(amount)
    except Invalid as error:
        errors.update(error.fields or {})
    if errors:
        raise Invalid(fields=errors)
    row = db.session.scalar(
        sa.select(SubsidyStandard).where(
            SubsidyStandard.occupation_code == code,
            SubsidyStandard.level.is_(None) if chosen is None else SubsidyStandard.level == chosen,
        )
    )
    before = str(row.amount_yuan) if row else None
    if row is None:
        row = SubsidyStandard(occupation_code=code, level=chosen, amount_yuan=value)
        db.session.add(row)
    row.amount_yuan = value
    row.updated_by = staff.id if staff else None
    db.session.flush()
    log(
        "standard.set",
        staff,
        "subsidy_standard",
        row.id,
        {"occupation_code": code, "level": level or None, "from": before, "to": str(value)},
    )
    return row


# --- the status of one enrolment ------------------------------------------------------------


@dataclass(frozen=True)
class Subsidy:
    assessment: rules.Assessment
    amount_yuan: Decimal | None
    certificate_no: str | None


def amount_due(
    assessment: rules.Assessment, grant: Decision | None, standard: SubsidyStandard | None
) -> Decimal | None:
    """What is paid: the amount fixed by the granting decision once eligible, nothing once
    rejected, and until then what the standard would pay today."""
    if assessment.status is rules.Status.INELIGIBLE:
        return Decimal("0.00")
    if assessment.status is rules.Status.ELIGIBLE and grant is not None:
        return grant.amount_yuan
    return standard.amount_yuan if standard else None


def _amount(enrollment: Enrollment, assessment: rules.Assessment) -> Decimal | None:
    return amount_due(assessment, _grant(enrollment), standard_for(enrollment.course))


def grants_of(ids: list[int]) -> dict[int, Decision]:
    """The latest decision that granted each enrolment's subsidy (an approval or the rules'
    own), for those that have one. One query for any number of enrolments."""
    latest: dict[int, Decision] = {}
    for decision in db.session.scalars(
        sa.select(Decision)
        .where(
            Decision.enrollment_id.in_(ids),
            Decision.action.in_([Action.APPROVE, Action.ELIGIBLE]),
        )
        .order_by(Decision.id)
    ):
        latest[decision.enrollment_id] = decision
    return latest


def _grant(enrollment: Enrollment) -> Decision | None:
    return grants_of([enrollment.id]).get(enrollment.id)


def subsidy_of(enrollment: Enrollment, facts: rules.Facts | None = None) -> Subsidy:
    """The status, amount and certificate of an enrolment (from `facts` if already gathered)."""
    assessment = rules.assess(facts if facts is not None else facts_for(enrollment))
    certificate = certificates.current_for(enrollment.id)
    return Subsidy(
        assessment, _amount(enrollment, assessment), certificate.number if certificate else None
    )


def subsidy_json(subsidy: Subsidy) -> dict[str, Any]:
    reasons = list(subsidy.assessment.reasons)
    if subsidy.amount_yuan is None and subsidy.assessment.status is not rules.Status.INELIGIBLE:
        reasons.append(rules.Reason("no_standard", {}))
    return {
        "status": subsidy.assessment.status.value,
        "reasons": [reason_json(reason) for reason in reasons],
        "amount_yuan": str(subsidy.amount_yuan) if subsidy.amount_yuan is not None else None,
    }


# --- what happens as an enrolment becomes eligible or is rejected ----------------------------


# Why a certificate stopped standing: stored with it, shown to its holder (REVOKE_MESSAGES).
REVOKED_BECAUSE = {
    rules.Status.INELIGIBLE: "subsidy_rejected",
    rules.Status.NEEDS_REVIEW: "under_review",
    rules.Status.IN_PROGRESS: "not_complete",
}
REVOKE_MESSAGES = {
    "subsidy_rejected": _l("An auditor rejected the subsidy for this training."),
    "under_review": _l(
        "Something in the study record needs an auditor's review; a new certificate is issued "
        "if it is approved."
    ),
    "not_complete": _l("The study time behind it is no longer complete."),
}


# A rejection one auditor proposed, waiting for a second (REJECTION_NEEDS_SECOND_AUDITOR), does
# not yet take anything away: four eyes decide that, not two.
KEEPS_CERTIFICATE = frozenset({"rejection_proposed"})


def settle(enrollment: Enrollment) -> rules.Assessment:
    """Act on the current status: grant and certify an eligible enrolment; revoke the
    certificate of one that is no longer eligible (rejected, no longer complete, or sent back
    to review by new evidence such as a failed check).

    Safe to call any number of times; the study workflow calls it whenever a face check closes
    or the course completes, and auditors' decisions call it too. Writes the enrolment's row
    in the auditors' queue from the same facts.
    """
    queue.hold([enrollment.id])  # before the facts: see app/subsidy/queue.py
    facts = facts_for(enrollment)
    assessment = rules.assess(facts)
    queue.write({enrollment.id: (assessment, facts)})
    if assessment.status is rules.Status.ELIGIBLE:
        if assessment.decision_id is None and _grant(enrollment) is None:
            standard = standard_for(enrollment.course)
            decision = Decision(
                enrollment_id=enrollment.id,
                action=Action.ELIGIBLE,
                reason="complete, every face check passed or cleared",
                amount_yuan=standard.amount_yuan if standard else None,
            )
            db.session.add(decision)
            db.session.flush()
            log("subsidy.eligible", None, "enrollment", enrollment.id, _decision_detail(decision))
            notifications.notify(
                enrollment.trainee_id,
                "subsidy_decided",
                enrollment_id=enrollment.id,
                status="eligible",
                amount=None if decision.amount_yuan is None else str(decision.amount_yuan),
            )
        if certificates.current_for(enrollment.id) is None:
            certificates.issue(enrollment.id, hours=round(facts.verified_s / 3600, 2))
        _keep_evidence(enrollment)
    else:
        held = bool(assessment.signals) and set(assessment.signals) <= KEEPS_CERTIFICATE
        revoked = None
        if not held:
            revoked = certificates.revoke(enrollment.id, reason=REVOKED_BECAUSE[assessment.status])
        if revoked is not None:
            log(
                "certificate.revoke",
                None,
                "enrollment",
                enrollment.id,
                {"certificate": revoked.number, "reason": revoked.revoke_reason},
            )
        if assessment.status is rules.Status.INELIGIBLE:
            _keep_evidence(enrollment)
    return assessment


def standing_rejection(assessment: rules.Assessment) -> Decision | None:
    """The rejection an ineligible status rests on, with the auditor's reason."""
    if assessment.status is not rules.Status.INELIGIBLE or assessment.decision_id is None:
        return None
    return db.session.get(Decision, assessment.decision_id)


def revoked_certificates(enrollment: Enrollment) -> list[dict[str, Any]]:
    """The enrolment's revoked certificates, newest first, with why in its holder's words."""
    return [
        {
            "number": row.number,
            "revoked_at": row.revoked_at,
            "why": revoke_message(row.revoke_reason),
        }
        for row in sorted(
            (c for c in certificates.certificates_of(enrollment.trainee_id) if c.revoked_at),
            key=lambda c: cast(datetime, c.revoked_at),  # only revoked ones are sorted
            reverse=True,
        )
        if row.enrollment_id == enrollment.id
    ]


def revoke_message(reason: str | None) -> str:
    """A revoked certificate's reason in its holder's words."""
    message = REVOKE_MESSAGES.get(reason or "")
    return str(message) if message is not None else (reason or "")


def on_completed(enrollment: Enrollment) -> None:
    """Draw the spot check once, the first time the enrolment completes, then settle it."""
    if db.session.get(SpotCheck, enrollment.id) is None:
        rate = float(current_app.config["SPOT_CHECK_RATE"])
        selected = random.SystemRandom().random() < rate
        db.session.add(SpotCheck(enrollment_id=enrollment.id, selected=selected, rate=rate))
        db.session.flush()
    settle(enrollment)


def _keep_evidence(enrollment: Enrollment) -> None:
    """Keep the images behind a decision for the retention period counted from the decision."""
    until = utcnow() + timedelta(days=current_app.config["EVIDENCE_RETENTION_DAYS"])
    checks = (
        sa.select(Check.id)
        .join(StudySession, Check.session_id == StudySession.id)
        .where(StudySession.enrollment_id == enrollment.id)
    )
    db.session.execute(
        sa.update(Evidence)
        .where(
            Evidence.purged_at.is_(None),
            Evidence.purge_after < until,
            sa.or_(
                Evidence.check_id.in_(checks),
                sa.and_(
                    Evidence.kind == EvidenceKind.REFERENCE,
                    Evidence.user_id == enrollment.trainee_id,
                ),
            ),
        )
        .values(purge_after=until)
    )


# --- auditors' decisions --------------------------------------------------------------------


def given_reason(text: Any, field: str = "reason") -> str:
    text = (text or "").strip() if isinstance(text, str) else ""
    if not text:
        raise Invalid(fields={field: _l("Give a reason; it is kept with the decision.")})
    if len(text) > MAX_REASON:
        raise Invalid(fields={field: _l("At most %(n)d characters.", n=MAX_REASON)})
    return text


def require_staff(user: User) -> None:
    if not user.is_staff:
        raise Forbidden(_l("Only auditors decide on subsidies."))


def _decision_detail(decision: Decision) -> dict[str, Any]:
    return {
        "decision": decision.id,
        "action": decision.action.value,
        "check": decision.check_id,
        "reason": decision.reason,
        "amount_yuan": str(decision.amount_yuan) if decision.amount_yuan is not None else None,
    }


def log(
    action: str, actor: User | None, subject_type: str, subject_id: int, detail: dict[str, Any]
) -> None:
    """Into the audit log: a person's act with the request's address, or the rules' own."""
    if actor is None:
        audit.record(
            action, actor=None, subject_type=subject_type, subject_id=subject_id, detail=detail
        )
    else:
        audit.record_request(
            action, subject_type=subject_type, subject_id=subject_id, detail=detail, actor=actor
        )


def enrollment_by_id(enrollment_id: int) -> Enrollment:
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise NotFound(_l("No such enrolment."))
    return enrollment


def decide(enrollment_id: int, decision: Any, reason: Any, *, auditor: User) -> Decision:
    """Approve or reject an enrolment's subsidy, with a reason that is kept."""
    require_staff(auditor)
    if decision not in (Action.APPROVE.value, Action.REJECT.value):
        raise Invalid(fields={"decision": _l("approve or reject.")})
    text = given_reason(reason)
    enrollment = enrollment_by_id(enrollment_id)
    # One decision at a time per enrolment: two auditors cannot cross each other's.
    lock_row(db.session, Enrollment, enrollment.id)
    current = assess(enrollment)
    action = Action(decision)
    if action is Action.APPROVE:
        if current.status is rules.Status.ELIGIBLE:
            raise Conflict(_l("This enrolment is already eligible."), code="already_eligible")
        if current.status is rules.Status.INELIGIBLE:
            raise Conflict(
                _l("This enrolment was rejected; only an appeal reopens it."), code="rejected"
            )
        if enrollment.completed_at is None:
            raise Conflict(
                _l("The course is not complete on verified time; nothing to pay yet."),
                code="not_complete",
            )
    elif current.status is rules.Status.INELIGIBLE:
        raise Conflict(_l("This enrolment is already rejected."), code="already_rejected")
    elif _proposed_by(current) == auditor.id:
        raise Conflict(
            _l("You proposed this rejection; another auditor must confirm it."),
            code="needs_another_auditor",
        )
    standard = standard_for(enrollment.course) if action is Action.APPROVE else None
    row = Decision(
        enrollment_id=enrollment.id,
        action=action,
        reason=text,
        amount_yuan=standard.amount_yuan if standard else None,
        decided_by=auditor.id,
    )
    db.session.add(row)
    db.session.flush()
    log(f"subsidy.{action.value}", auditor, "enrollment", enrollment.id, _decision_detail(row))
    settle(enrollment)
    notifications.notify(
        enrollment.trainee_id,
        "appeal_decided" if "appealed" in current.signals else "subsidy_decided",
        enrollment_id=enrollment.id,
        status=assess(enrollment).status.value,
        amount=None if row.amount_yuan is None else str(row.amount_yuan),
    )
    return row


def _proposed_by(assessment: rules.Assessment) -> int | None:
    """The auditor whose rejection waits for a second one, if any."""
    for reason in assessment.reasons:
        if reason.code == "rejection_proposed":
            return db.session.get_one(Decision, reason.evidence["decision"]).decided_by
    return None


def clear_check(check_id: int, reason: Any, *, auditor: User) -> Decision:
    """An auditor finds that a failed check was the trainee after all (bad light, a new haircut)."""
    require_staff(auditor)
    text = given_reason(reason)
    check = db.session.get(Check, check_id)
    if check is None:
        raise NotFound(_l("No such face check."))
    if check.status is not CheckStatus.FAILED:
        raise Conflict(_l("Only a failed check can be cleared."), code="check_not_failed")
    session = db.session.get_one(StudySession, check.session_id)
    already = db.session.scalar(
        sa.select(Decision.id).where(
            Decision.check_id == check.id, Decision.action == Action.CLEAR_CHECK
        )
    )
    if already is not None:
        raise Conflict(_l("This check is already cleared."), code="already_cleared")
    row = Decision(
        enrollment_id=session.enrollment_id,
        action=Action.CLEAR_CHECK,
        check_id=check.id,
        reason=text,
        decided_by=auditor.id,
    )
    db.session.add(row)
    db.session.flush()
    log("subsidy.clear_check", auditor, "check", check.id, _decision_detail(row))
    settle(enrollment_by_id(session.enrollment_id))
    return row


def appeal(user: User, enrollment_id: int, message: Any) -> Appeal:
    """A trainee answers a rejection; the enrolment goes back to the auditors."""
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.trainee_id != user.id:
        raise NotFound(_l("No such enrolment."))
    text = given_reason(message, "message")
    assessment = assess(enrollment)
    if assessment.status is not rules.Status.INELIGIBLE:
        if any(reason.code == "appealed" for reason in assessment.reasons):
            raise Conflict(_l("Your appeal is already with the auditors."), code="already_appealed")
        raise Conflict(_l("Only a rejected subsidy can be appealed."), code="not_rejected")
    row = Appeal(enrollment_id=enrollment.id, rejection_id=assessment.decision_id, message=text)
    db.session.add(row)
    db.session.flush()
    log("subsidy.appeal", user, "enrollment", enrollment.id, {"appeal": row.id})
    refresh_queue([enrollment.id])
    return row


def settle_trainee(user_id: int) -> None:
    """Settle every completed enrolment of a trainee, after a decision about their identity,
    and recompute the queue rows of the others (a flag holds those in the queue too)."""
    enrollments = list(
        db.session.scalars(
            sa.select(Enrollment).where(Enrollment.trainee_id == user_id).order_by(Enrollment.id)
        )
    )
    queue.hold([e.id for e in enrollments])  # all at once, in one order: no crossed locks
    refresh_queue([e.id for e in enrollments if e.completed_at is None])
    for enrollment in enrollments:
        if enrollment.completed_at is not None:
            settle(enrollment)


# --- the auditors' queue --------------------------------------------------------------------


def refresh_queue(ids: Iterable[int]) -> None:
    """Recompute these enrolments' rows in the auditors' queue from their facts, in a fixed
    number of queries however many there are."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    queue.hold(wanted)
    enrollments = _load(wanted)
    facts = facts_of(enrollments)
    queue.write({e.id: (rules.assess(facts[e.id]), facts[e.id]) for e in enrollments})


def mark_stale(enrollment_id: int) -> None:
    """For the study workflow: a session opened, or a heartbeat was refused as skipping ahead,
    so the evidence listed under a queued enrolment changed (never whether it is queued). One
    UPDATE, only where the enrolment waits in the queue; the desk recomputes the row."""
    queue.mark_stale(enrollment_id)


def refresh_stale(limit: int = queue.STALE_BATCH) -> int:
    """Recompute up to ``limit`` rows an event marked stale; how many. The desk does this
    before each view (then commits), so no view pays for more than one batch."""
    ids = queue.stale_ids(limit)
    refresh_queue(ids)
    return len(ids)


@schedule.register("refresh_desk_queue", "DESK_QUEUE_REFRESH_S")
def refresh_stale_queue(max_batches: int = 50) -> int:
    """The periodic task: recompute stale queue rows a batch per transaction, committing each
    (at most ``max_batches``, the rest at the next turn); how many."""
    done = 0
    for _ in range(max_batches):
        count = refresh_stale(queue.REBUILD_BATCH)
        db.session.commit()
        done += count
        if count < queue.REBUILD_BATCH:
            break
    return done


def rebuild_queue(batch: int = queue.REBUILD_BATCH) -> Iterator[int]:
    """Recompute every enrolment's queue row, ``batch`` enrolments at a time, yielding after
    each batch how many are done so the caller commits it (after a deploy, or to repair)."""
    after = 0
    done = 0
    while True:
        ids = list(
            db.session.scalars(
                sa.select(Enrollment.id)
                .where(Enrollment.id > after)
                .order_by(Enrollment.id)
                .limit(batch)
            )
        )
        if not ids:
            return
        refresh_queue(ids)
        done += len(ids)
        after = ids[-1]
        yield done


@dataclass(frozen=True)
class QueueItem:
    """One enrolment in the queue as its row has it, with the trainee and course to show."""

    enrollment: Enrollment
    trainee: User
    course: Course
    risk: int
    complete: bool
    reasons: list[rules.Reason]
    checks: list[dict[str, Any]]


def _load(ids: Iterable[int]) -> list[Enrollment]:
    return list(
        db.session.scalars(
            sa.select(Enrollment)
            .where(Enrollment.id.in_(list(ids)))
            .order_by(Enrollment.id)
            .options(selectinload(Enrollment.course).selectinload(Course.lessons))
        )
    )


# Riskiest first, then those waiting longest: one total order, so pages never overlap.
QUEUE_ORDER = (QueueEntry.priority, QueueEntry.enrollment_id)
WAITING = QueueEntry.status == rules.Status.NEEDS_REVIEW


def review_queue(limit: int = 200, offset: int = 0) -> list[QueueItem]:
    """Enrolments waiting for an auditor, riskiest first, then those waiting longest: read
    from the queue's rows in one query (see `refresh_stale` for rows an event left stale)."""
    rows = db.session.execute(
        sa.select(QueueEntry, Enrollment, User, Course)
        .join(Enrollment, Enrollment.id == QueueEntry.enrollment_id)
        .join(User, User.id == Enrollment.trainee_id)
        .join(Course, Course.id == Enrollment.course_id)
        .where(WAITING)
        .order_by(*QUEUE_ORDER)
        .offset(offset)
        .limit(limit)
    )
    return [
        QueueItem(
            enrollment,
            trainee,
            course,
            entry.risk,
            entry.complete,
            [rules.Reason(r["code"], r["evidence"]) for r in entry.reasons],
            list(entry.checks),
        )
        for entry, enrollment, trainee, course in rows
    ]


def queue_size() -> int:
    count = db.session.scalar(sa.select(sa.func.count()).select_from(QueueEntry).where(WAITING))
    return count or 0


def next_in_queue(after: int) -> int | None:
    """The enrolment an auditor opens next: the top of the queue but ``after``."""
    return db.session.scalar(
        sa.select(QueueEntry.enrollment_id)
        .where(WAITING, QueueEntry.enrollment_id != after)
        .order_by(*QUEUE_ORDER)
        .limit(1)
    )


def queue_item_json(item: QueueItem) -> dict[str, Any]:
    return {
        "enrollment_id": item.enrollment.id,
        "trainee": {
            "name": item.trainee.name_masked,
            "id_number": item.trainee.id_number_masked,
        },
        "course": {"id": item.course.id, "title": item.course.title},
        "completed": item.complete,
        "risk": item.risk,
        "reasons": [reason_json(reason) for reason in item.reasons],
        "checks": item.checks,
    }


def history(enrollment: Enrollment) -> tuple[list[Decision], list[Appeal]]:
    decisions = db.session.scalars(
        sa.select(Decision).where(Decision.enrollment_id == enrollment.id).order_by(Decision.id)
    )
    appeals = db.session.scalars(
        sa.select(Appeal).where(Appeal.enrollment_id == enrollment.id).order_by(Appeal.id)
    )
    return list(decisions), list(appeals)


# --- the trainee's e-archive -------------------------------------------------------------------


def archive(user: User) -> list[dict[str, Any]]:
    """Everything the record says about the trainee's training, enrolment by enrolment."""
    enrollments = list(
        db.session.scalars(
            sa.select(Enrollment)
            .where(Enrollment.trainee_id == user.id)
            .order_by(Enrollment.created_at)
            .options(selectinload(Enrollment.course).selectinload(Course.lessons))
        )
    )
    facts = facts_of(enrollments)
    issued: dict[int, list[Any]] = defaultdict(list)
    for certificate in certificates.certificates_of(user.id):
        issued[certificate.enrollment_id].append(certificates.public_json(certificate))
    items = []
    for enrollment in enrollments:
        fact = facts[enrollment.id]
        assessment = rules.assess(fact)
        course = enrollment.course
        decisions, appeals = history(enrollment)
        answered = [check for check in fact.checks if check.passed is not None]
        items.append(
            {
                "enrollment_id": enrollment.id,
                "course": {"id": course.id, "title": course.title, "hours": str(course.hours)},
                "occupation": {"code": course.occupation_code, "name": course.occupation.name},
                "level": course.level.value if course.level else None,
                "enrolled_at": enrollment.created_at.isoformat(),
                "completed_at": _iso(enrollment.completed_at),
                "verified_hours": round(fact.verified_s / 3600, 2),
                "checks": {
                    "total": len(answered),
                    "passed": sum(1 for check in answered if check.passed),
                    "failed": sum(1 for check in answered if not check.passed),
                    "cleared": sum(1 for check in answered if check.cleared_by is not None),
                },
                "subsidy": subsidy_json(Subsidy(assessment, _amount(enrollment, assessment), None)),
                "decisions": [
                    {
                        "action": d.action.value,
                        "reason": d.reason,
                        "amount_yuan": str(d.amount_yuan) if d.amount_yuan is not None else None,
                        "at": d.decided_at.isoformat(),
                    }
                    for d in decisions
                ],
                "appeals": [
                    {"message": a.message, "at": a.created_at.isoformat()} for a in appeals
                ],
                "certificates": issued[enrollment.id],
            }
        )
    return items


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
