"""The trainee's learning overview (`/learn`): every enrolment with its progress, verified study
time, subsidy status and what to do next.

Read-only, and in a fixed number of queries whatever the number of enrolments: progress rows
in one query, the subsidy facts through the subsidy service's batch gathering (the same facts
and rules the auditors' queue uses, so the two never disagree), and the amounts, rejections and
certificates the page names read here, one query each, from the subsidy and certificate tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import url_for
from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload, selectinload

from app.certificates.models import Certificate
from app.courses.models import Course
from app.extensions import db
from app.identity.models import User
from app.learning import service
from app.learning.models import Enrollment
from app.subsidy import rules
from app.subsidy import service as subsidy
from app.subsidy.models import Decision


@dataclass(frozen=True)
class Step:
    """What the trainee does (or waits for) next in one enrolment."""

    # start, continue, none, face, identity_review, identity_closed, appeal, appeal_pending,
    # waiting_auditor, certificate_pending, certificate
    kind: str
    text: str
    url: str | None = None
    action: str | None = None  # the link's words


@dataclass(frozen=True)
class Item:
    enrollment: Enrollment
    course: Course
    summary: dict[str, Any]  # learning.service.summarize
    lessons_done: int
    status: str  # rules.Status value
    sentence: str  # the subsidy status in words
    certificate_no: str | None
    next: Step


@dataclass(frozen=True)
class Overview:
    items: list[Item]
    face: dict[str, Any] | None  # verification.face_status, for trainees


# --- the subsidy status in words --------------------------------------------------------------

NOT_YET = _l(
    "Not yet eligible: the subsidy can be granted once every lesson is complete on confirmed "
    "study time."
)
REVIEWING = _l("Waiting for review: an auditor is checking your study record.")
APPEAL_PENDING = _l("Appeal pending: the auditors are looking at your appeal.")
ELIGIBLE_AMOUNT = _l("Eligible: a subsidy of %(amount)s yuan.")
ELIGIBLE_NO_AMOUNT = _l(
    "Eligible: the bureau has not yet set the subsidy amount for this occupation and level."
)
REJECTED_BECAUSE = _l("Not eligible. The auditor's reason: %(reason)s")
REJECTED = _l("Not eligible: an auditor rejected the subsidy.")


def sentence(
    assessment: rules.Assessment, amount: Decimal | None, rejection: Decision | None
) -> str:
    """The subsidy status of an enrolment as one sentence for its trainee."""
    status = assessment.status
    if status is rules.Status.ELIGIBLE:
        if amount is None:
            return str(ELIGIBLE_NO_AMOUNT)
        return str(ELIGIBLE_AMOUNT) % {"amount": format_decimal(amount, format="#,##0.00")}
    if status is rules.Status.INELIGIBLE:
        if rejection is not None and rejection.reason:
            return str(REJECTED_BECAUSE) % {"reason": rejection.reason}
        return str(REJECTED)
    if status is rules.Status.NEEDS_REVIEW:
        return str(APPEAL_PENDING if "appealed" in assessment.signals else REVIEWING)
    return str(NOT_YET)


# --- read-only look-ups of the subsidy and certificate tables, for many enrolments at once ------


def _live_certificates(ids: list[int]) -> dict[int, str]:
    query = sa.select(Certificate.enrollment_id, Certificate.number).where(
        Certificate.enrollment_id.in_(ids), Certificate.revoked_at.is_(None)
    )
    return {enrollment_id: number for enrollment_id, number in db.session.execute(query)}


def _decisions(ids: set[int]) -> dict[int, Decision]:
    if not ids:
        return {}
    return {d.id: d for d in db.session.scalars(sa.select(Decision).where(Decision.id.in_(ids)))}


# --- what is next ---------------------------------------------------------------------------


def _blocker(face: dict[str, Any] | None) -> Step | None:
    """What keeps the trainee from studying at all, if anything (the same conditions as
    verification.require_verified_identity)."""
    if face is None:
        return None
    if face["closed"]:
        return Step(
            "identity_closed",
            str(
                _l(
                    "An auditor found that you already study under another account; this one "
                    "is closed. Contact the bureau if this is wrong."
                )
            ),
        )
    if not face["enrolled"]:
        return Step(
            "face",
            str(_l("Enrol your face before you study: it is how we know the studying is yours.")),
            url_for("verification.enrol_page"),
            str(_l("Enrol your face")),
        )
    if face["under_review"]:
        return Step(
            "identity_review",
            str(_l("Waiting for an auditor to confirm your identity; you can study again then.")),
        )
    return None


def next_step(
    enrollment: Enrollment,
    summary: dict[str, Any],
    assessment: rules.Assessment,
    certificate_no: str | None,
    blocker: Step | None,
) -> Step:
    page = url_for("learning.enrollment", enrollment_id=enrollment.id)
    if certificate_no is not None:
        return Step(
            "certificate",
            str(_l("Your certificate %(number)s is issued.", number=certificate_no)),
            url_for("certificates.printable", number=certificate_no),
            str(_l("View the certificate")),
        )
    status = assessment.status
    if status is rules.Status.INELIGIBLE:
        return Step(
            "appeal",
            str(_l("If you disagree with the auditor's decision, you may appeal.")),
            page + "#subsidy",
            str(_l("Read the reason and appeal")),
        )
    if status is rules.Status.NEEDS_REVIEW and "appealed" in assessment.signals:
        return Step("appeal_pending", str(_l("Wait for the auditors' answer to your appeal.")))
    if summary["completed"]:
        if status is rules.Status.NEEDS_REVIEW:
            return Step(
                "waiting_auditor",
                str(_l("You have finished the course. Wait for an auditor to review it.")),
            )
        return Step(
            "certificate_pending",
            str(_l("You have finished the course. Your certificate is being prepared.")),
        )
    if blocker is not None:
        return blocker
    lesson = next((item for item in summary["lessons"] if not item["completed"]), None)
    if lesson is None:  # a course without lessons: nothing to study, only to look at
        return Step(
            "none", str(_l("This course has no lessons to study yet.")), page, str(_l("Details"))
        )
    started = lesson["credited_s"] > 0
    title = lesson["title"]
    text = (
        _l("Continue: %(title)s", title=title) if started else _l("Start: %(title)s", title=title)
    )
    return Step(
        "continue" if started else "start",
        str(text),
        url_for("learning.player", lesson_id=lesson["id"]),
        str(_l("Continue") if started else _l("Start")),
    )


# --- the overview -----------------------------------------------------------------------------


def of(user: User, face: dict[str, Any] | None) -> Overview:
    """Every enrolment of the trainee, newest first; `face` is verification.face_status."""
    enrollments = list(
        db.session.scalars(
            sa.select(Enrollment)
            .where(Enrollment.trainee_id == user.id)
            .order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
            .options(
                selectinload(Enrollment.course).options(
                    selectinload(Course.lessons),
                    joinedload(Course.occupation),
                    joinedload(Course.platform),
                )
            )
        )
    )
    if not enrollments:
        return Overview([], face)
    ids = [e.id for e in enrollments]
    rows = service.progress_rows(enrollments)
    # The subsidy service's batch gathering of the rules' inputs (as its queue and e-archive
    # use it): one set of queries for all enrolments, and the same status the auditors see.
    facts = subsidy.facts_of(enrollments)
    assessments = {e.id: rules.assess(facts[e.id]) for e in enrollments}
    grants = subsidy.grants_of(ids)
    standards = subsidy.standards_of([e.course for e in enrollments])
    certificates = _live_certificates(ids)
    rejections = _decisions(
        {
            a.decision_id
            for a in assessments.values()
            if a.status is rules.Status.INELIGIBLE and a.decision_id is not None
        }
    )
    blocker = _blocker(face)
    items = []
    for enrollment in enrollments:
        summary = service.summarize(enrollment, rows[enrollment.id])
        assessment = assessments[enrollment.id]
        amount = subsidy.amount_due(
            assessment, grants.get(enrollment.id), standards[enrollment.course.id]
        )
        certificate_no = certificates.get(enrollment.id)
        items.append(
            Item(
                enrollment=enrollment,
                course=enrollment.course,
                summary=summary,
                lessons_done=sum(1 for lesson in summary["lessons"] if lesson["completed"]),
                status=assessment.status.value,
                sentence=sentence(assessment, amount, rejections.get(assessment.decision_id or 0)),
                certificate_no=certificate_no,
                next=next_step(enrollment, summary, assessment, certificate_no, blocker),
            )
        )
    return Overview(items, face)
