"""What an auditor looks at: each session's timeline, the retained face images, the flags.

Face images leave only through `evidence_for_view` and `check_image`, which refuse anyone
but auditors and admins, and `log_view`, which puts every look into the audit log.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.errors import Forbidden, NotFound
from app.extensions import db
from app.identity.models import User
from app.learning.models import Enrollment, HeartbeatRecord, StudySession
from app.subsidy.service import log, require_staff
from app.verification import service as verification
from app.verification.models import (
    Check,
    Evidence,
    FaceReference,
    FaceStatus,
    FlagStatus,
    IdentityFlag,
)


@dataclass
class Stretch:
    """Consecutive heartbeats that earned time: when, and which part of the lesson."""

    started_at: float
    ended_at: float
    from_s: float
    to_s: float
    credited_s: float


@dataclass
class SessionView:
    session: StudySession
    stretches: list[Stretch]
    checks: list[Check]
    held_reasons: dict[str, int]


def _stretches(beats: list[HeartbeatRecord]) -> list[Stretch]:
    stretches: list[Stretch] = []
    previous = None
    for beat in beats:
        if beat.credited_s > 0 and previous is not None:
            if stretches and stretches[-1].ended_at == previous.received_at:
                last = stretches[-1]
                last.ended_at, last.to_s = beat.received_at, beat.position_s
                last.credited_s = round(last.credited_s + beat.credited_s, 3)
            else:
                stretches.append(
                    Stretch(
                        previous.received_at,
                        beat.received_at,
                        previous.position_s,
                        beat.position_s,
                        beat.credited_s,
                    )
                )
        previous = beat
    return stretches


def timeline(enrollment: Enrollment) -> list[SessionView]:
    """Each study session: what earned time, the checks asked, and why time was held back."""
    sessions = list(
        db.session.scalars(
            sa.select(StudySession)
            .where(StudySession.enrollment_id == enrollment.id)
            .order_by(StudySession.started_at, StudySession.id)
        )
    )
    ids = [s.id for s in sessions]
    beats: dict[int, list[HeartbeatRecord]] = defaultdict(list)
    for beat in db.session.scalars(
        sa.select(HeartbeatRecord)
        .where(HeartbeatRecord.session_id.in_(ids))
        .order_by(HeartbeatRecord.session_id, HeartbeatRecord.id)
    ):
        beats[beat.session_id].append(beat)
    checks: dict[int, list[Check]] = defaultdict(list)
    for check in db.session.scalars(
        sa.select(Check).where(Check.session_id.in_(ids)).order_by(Check.id)
    ):
        checks[check.session_id].append(check)
    views = []
    for session in sessions:
        held: dict[str, int] = defaultdict(int)
        for beat in beats[session.id]:
            if beat.reason and beat.reason not in ("first_heartbeat", "no_progress"):
                held[beat.reason] += 1
        views.append(
            SessionView(session, _stretches(beats[session.id]), checks[session.id], dict(held))
        )
    return views


def snapshots(enrollment: Enrollment) -> dict[int, list[Evidence]]:
    """The retained images of each check of the enrolment, by check id."""
    query = (
        sa.select(Evidence)
        .join(Check, Evidence.check_id == Check.id)
        .join(StudySession, Check.session_id == StudySession.id)
        .where(StudySession.enrollment_id == enrollment.id)
        .order_by(Evidence.id)
    )
    result: dict[int, list[Evidence]] = defaultdict(list)
    for evidence in db.session.scalars(query):
        assert evidence.check_id is not None  # joined on its check
        result[evidence.check_id].append(evidence)
    return result


def trainee_of(enrollment: Enrollment) -> User:
    return db.session.get_one(User, enrollment.trainee_id)


def flags_of(user_id: int) -> list[IdentityFlag]:
    query = sa.select(IdentityFlag).where(IdentityFlag.user_id == user_id)
    return list(db.session.scalars(query.order_by(IdentityFlag.id)))


def reference_evidence(user_id: int) -> Evidence | None:
    """The photo of the trainee's active reference face."""
    reference = verification.active_reference(db.session.get_one(User, user_id))
    return _reference_photo(reference) if reference else None


@dataclass(frozen=True)
class FacePair:
    """Two reference photos an auditor compares, and the question about them."""

    left: tuple[User, Evidence | None]
    # None: the other account is a trainee outside the caller's district (bureau.scope).
    right: tuple[User | None, Evidence | None]
    score: float | None  # in the terms of `model`
    model: str | None
    open: bool


def _reference_photo(reference: FaceReference) -> Evidence | None:
    return db.session.get(Evidence, reference.evidence_id)


def flag_pair(flag_id: int) -> tuple[IdentityFlag, FacePair]:
    """A duplicate-identity flag: the flagged trainee's face beside the other account's."""
    flag = db.session.get(IdentityFlag, flag_id)
    if flag is None:
        raise NotFound(_l("No such identity flag."))
    flagged = db.session.get_one(User, flag.user_id)
    # A district officer sees the flag of their own trainee, but not the other account when
    # it is another district's: that side stays empty, and a city auditor decides the flag.
    other = db.session.get(User, flag.other_user_id)
    pair = FacePair(
        (flagged, reference_evidence(flagged.id)),
        (other, reference_evidence(other.id) if other is not None else None),
        flag.score,
        flag.model,
        flag.status is FlagStatus.OPEN,
    )
    return flag, pair


def require_both_sides(flag_id: int) -> None:
    """Deciding a flag means comparing both faces: refused when one is out of scope."""
    _, pair = flag_pair(flag_id)
    if pair.right[0] is None:
        raise Forbidden(
            _l(
                "The other account belongs to a trainee outside your district; a city "
                "auditor decides this flag."
            ),
            code="out_of_scope",
        )


def reference_pair(reference_id: int) -> tuple[FaceReference, FacePair]:
    """A re-enrolment: the face in use beside the new one waiting for approval."""
    reference = db.session.get(FaceReference, reference_id)
    if reference is None:
        raise NotFound(_l("No such reference face."))
    user = db.session.get_one(User, reference.user_id)
    pair = FacePair(
        (user, reference_evidence(user.id)),
        (user, _reference_photo(reference)),
        None,
        None,
        reference.status is FaceStatus.PENDING_APPROVAL,
    )
    return reference, pair


def waiting_identity() -> tuple[list[IdentityFlag], list[FaceReference]]:
    """Open flags and re-enrolments: questions about who a trainee is, with no enrolment needed."""
    return verification.open_identity_flags(), verification.pending_references()


# --- face images, for auditors only, every view logged ---------------------------------------


def evidence_for_view(evidence_id: int, viewer: User) -> Evidence:
    require_staff(viewer)
    evidence = db.session.get(Evidence, evidence_id)
    if evidence is None:
        raise NotFound(_l("No such image."))
    if evidence.key is None:
        raise NotFound(
            _l("This image was purged at the end of its retention period."), code="purged"
        )
    return evidence


def check_image(check_id: int, viewer: User) -> Evidence:
    """The frame of a check's answer that came closest to the reference (the one that matched,
    in a passed check)."""
    require_staff(viewer)
    frames = db.session.scalars(
        sa.select(Evidence).where(Evidence.check_id == check_id).order_by(Evidence.id)
    ).all()
    if not frames:
        raise NotFound(_l("This check has no retained image."), code="no_image")
    check = db.session.get(Check, check_id)
    scored = [(frame, frame.score) for frame in frames if frame.score is not None]
    best = frames[0]
    if scored and check is not None and check.model is not None:
        best, best_score = scored[0]
        for frame, score in scored[1:]:
            if verification.closer(check.model, score, best_score):
                best, best_score = frame, score
    return evidence_for_view(best.id, viewer)


def log_view(evidence: Evidence, viewer: User) -> None:
    detail = {"evidence": evidence.id, "kind": evidence.kind.value, "check": evidence.check_id}
    log("evidence.view", viewer, "user", evidence.user_id, detail)
