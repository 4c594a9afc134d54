"""Identity verification: enrol a reference face, ask and judge face checks, keep the evidence.

Money follows verified time. A check that fails, or is not answered in time, voids the study
time credited since the last passed check; no time is credited while a check waits for its
answer. The face model is imported lazily: loading it costs about a second and 125 MB, which
only processes that verify faces should pay.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import security
from app.audit import service as audit
from app.db import utcnow
from app.errors import AppError, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge
from app.extensions import db
from app.identity.models import User
from app.media.service import storage
from app.verification.models import (
    AnswerStatus,
    Check,
    CheckAnswer,
    CheckKind,
    CheckStatus,
    Evidence,
    EvidenceKind,
    FaceReference,
    FaceStatus,
    FlagStatus,
    IdentityFlag,
)

ENCODING_KEY = "face-encoding"
CHALLENGES = ("blink", "turn_left", "turn_right")
# A snapshot this close in perceptual hash to an earlier image is a replay. Re-encoded copies of
# one photo differ by 0-5 bits; different photos by 15 or more; frames of one video a second
# apart can come within 6, so stay below that.
REPLAY_MAX_BITS = 4
# Where answers judged by workers keep their frames until judged (private, deleted after).
ANSWER_PREFIX = "check-answers"


def faces() -> ModuleType:
    from media_pipeline import faces as engine

    return engine


def threshold() -> float:
    return float(current_app.config["FACE_THRESHOLD"])


# --- evidence -----------------------------------------------------------------------------


def _content_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


def store_evidence(
    user: User,
    data: bytes,
    kind: EvidenceKind,
    *,
    dhash: int | None,
    result: str | None,
    distance: float | None = None,
    check: Check | None = None,
    lesson_id: int | None = None,
    position_s: float | None = None,
) -> Evidence:
    """Keep one image privately, with what it was judged to be."""
    content_type = _content_type(data)
    extension = {"image/png": "png", "image/webp": "webp"}.get(content_type, "jpg")
    key = f"faces/{user.id}/{uuid.uuid4().hex}.{extension}"
    stored = storage().put_stream(
        key, io.BytesIO(data), content_type=content_type, length=len(data)
    )
    now = utcnow()
    evidence = Evidence(
        user_id=user.id,
        kind=kind,
        check_id=check.id if check else None,
        lesson_id=lesson_id,
        position_s=position_s,
        key=key,
        content_type=content_type,
        sha256=stored.sha256,
        dhash=f"{dhash:016x}" if dhash is not None else None,
        result=result,
        distance=distance,
        captured_at=now,
        purge_after=now + timedelta(days=current_app.config["EVIDENCE_RETENTION_DAYS"]),
    )
    db.session.add(evidence)
    db.session.flush()
    return evidence


def is_replay(images: list[tuple[bytes, int | None]], *, exclude_check: int) -> bool:
    """True when any of these images, or one nearly identical in pixels, was submitted before.

    Compared with every retained image of anyone, references included, except the earlier
    attempts at the same check. One query for exact copies and one pass over the stored
    perceptual hashes, whatever the burst's length; past a few million images that pass wants
    an index (BK-tree).
    """
    earlier = sa.or_(Evidence.check_id.is_(None), Evidence.check_id != exclude_check)
    digests = [hashlib.sha256(data).hexdigest() for data, _ in images]
    exact = sa.select(Evidence.id).where(Evidence.sha256.in_(digests), earlier).limit(1)
    if db.session.scalar(exact):
        return True
    hashes = [dhash for _, dhash in images if dhash is not None]
    if not hashes:
        return False
    engine = faces()
    stored = db.session.scalars(
        sa.select(Evidence.dhash).where(Evidence.dhash.is_not(None), earlier)
    )
    return any(
        engine.hamming(dhash, int(value, 16)) <= REPLAY_MAX_BITS
        for value in stored
        for dhash in hashes
    )


# --- enrolment ----------------------------------------------------------------------------


def _face_error(error: Exception) -> AppError:
    code = getattr(error, "code", "not_an_image")
    message = getattr(error, "message", str(error))
    if code == "image_too_large":
        return PayloadTooLarge(message, code="image_too_large")
    return Invalid(message, code=code)


def active_reference(user: User) -> FaceReference | None:
    return db.session.scalar(
        sa.select(FaceReference).where(
            FaceReference.user_id == user.id, FaceReference.status == FaceStatus.ACTIVE
        )
    )


def reference_encoding(reference: FaceReference) -> Any:
    raw = security.decrypt(ENCODING_KEY, reference.encoding_cipher)
    return faces().encoding_from_bytes(bytes.fromhex(raw))


def has_studied(user: User) -> bool:
    return bool(
        db.session.scalar(
            sa.select(Check.id)
            .where(Check.user_id == user.id, Check.status == CheckStatus.PASSED)
            .limit(1)
        )
    )


@dataclass(frozen=True)
class Enrolment:
    reference: FaceReference
    flags: list[IdentityFlag]


def enrol_face(user: User, data: bytes) -> Enrolment:
    """Check a photo's quality, keep it as the reference, and flag faces seen on other accounts.

    A first enrolment is active at once. Once the trainee has passed a check, a new reference
    waits for staff approval: otherwise anyone could swap in another person's face.
    """
    if user.role.value != "trainee":
        raise Forbidden(_l("Only trainees enrol a face."))
    engine = faces()
    try:
        rgb = engine.decode_image(data, max_bytes=current_app.config["FACE_MAX_BYTES"])
        analysis = engine.analyze(rgb, purpose="enrol")
    except engine.FaceError as error:
        raise _face_error(error) from None
    dhash = engine.near_duplicate_hash(rgb)
    evidence = store_evidence(user, data, EvidenceKind.REFERENCE, dhash=dhash, result="enrolled")
    previous = active_reference(user)
    status = FaceStatus.PENDING_APPROVAL if previous and has_studied(user) else FaceStatus.ACTIVE
    reference = FaceReference(
        user_id=user.id,
        status=status,
        encoding_cipher=security.encrypt(
            ENCODING_KEY, engine.encoding_to_bytes(analysis.encoding).hex()
        ),
        evidence_id=evidence.id,
        face_px=analysis.quality.face_px,
        blur=round(analysis.quality.blur, 2),
        brightness=round(analysis.quality.brightness, 2),
    )
    if status is FaceStatus.ACTIVE and previous is not None:
        previous.status = FaceStatus.REPLACED
    db.session.add(reference)
    flags = _flag_duplicates(user, analysis.encoding)
    db.session.flush()
    return Enrolment(reference, flags)


def _flag_duplicates(user: User, encoding: Any) -> list[IdentityFlag]:
    """One face, one identity: a match with another trainee's reference goes to an auditor."""
    engine = faces()
    limit = threshold()
    others = db.session.scalars(
        sa.select(FaceReference).where(
            FaceReference.status == FaceStatus.ACTIVE, FaceReference.user_id != user.id
        )
    )
    flags = []
    for other in others:
        distance = engine.distance(encoding, reference_encoding(other))
        if engine.decide(distance, limit):
            flag = IdentityFlag(
                user_id=user.id,
                code="duplicate_identity",
                other_user_id=other.user_id,
                distance=round(distance, 4),
            )
            db.session.add(flag)
            flags.append(flag)
    return flags


def open_flags(user: User) -> list[IdentityFlag]:
    return list(
        db.session.scalars(
            sa.select(IdentityFlag).where(
                IdentityFlag.user_id == user.id, IdentityFlag.status == FlagStatus.OPEN
            )
        )
    )


def require_verified_identity(user: User) -> None:
    """Studying needs an enrolled face and no open question about the trainee's identity."""
    if active_reference(user) is None:
        raise Forbidden(_l("Enrol your face before studying."), code="face_not_enrolled")
    if open_flags(user):
        raise Forbidden(
            _l("Your identity is being reviewed by an auditor; studying resumes once it is."),
            code="identity_under_review",
        )


def face_status(user: User) -> dict[str, Any]:
    reference = active_reference(user)
    pending = db.session.scalar(
        sa.select(FaceReference.id).where(
            FaceReference.user_id == user.id,
            FaceReference.status == FaceStatus.PENDING_APPROVAL,
        )
    )
    return {
        "enrolled": reference is not None,
        "pending_approval": pending is not None,
        "under_review": bool(open_flags(user)),
        "enrolled_at": reference.created_at.isoformat() if reference else None,
    }


# --- checks -------------------------------------------------------------------------------


def open_check(session: Any, kind: CheckKind, position_s: float | None) -> Check:
    challenge = secrets.choice(CHALLENGES) if current_app.config["LIVENESS"] else None
    check = Check(
        session_id=session.id,
        user_id=session.trainee_id,
        kind=kind,
        challenge=challenge,
        position_s=position_s,
        expires_at=utcnow() + timedelta(seconds=current_app.config["CHECK_WINDOW_S"]),
    )
    db.session.add(check)
    session.since_check_s = 0.0
    db.session.flush()
    return check


def next_check_after_s() -> float:
    """Credited study before the next random check, drawn fresh each time, never announced."""
    low = float(current_app.config["CHECK_INTERVAL_MIN_S"])
    high = float(current_app.config["CHECK_INTERVAL_MAX_S"])
    return random.SystemRandom().uniform(low, max(low, high))


def check_json(check: Check | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "id": check.id,
        "kind": check.kind.value,
        "challenge": check.challenge,
        "expires_at": check.expires_at.isoformat(),
    }


def latest_check(session: Any) -> Check | None:
    return db.session.scalar(
        sa.select(Check).where(Check.session_id == session.id).order_by(Check.id.desc()).limit(1)
    )


def settle(
    session: Any, check: Check, *, passed: bool, code: str | None, distance: float | None
) -> float:
    """Close a check; a failure voids the time credited since the last passed check.

    Returns the seconds voided.
    """
    check.status = CheckStatus.PASSED if passed else CheckStatus.FAILED
    check.code = code
    check.distance = distance
    check.threshold = threshold()
    check.answered_at = utcnow()
    check.settled_s = round(session.unverified_s, 3)
    voided = 0.0 if passed else session.unverified_s
    session.unverified_s = 0.0
    if passed:
        session.next_check_after_s = next_check_after_s()
    return voided


def expire_if_due(session: Any, check: Check | None) -> float:
    """Fail a pending check whose window has closed; returns the seconds voided.

    A check whose answer waits for a worker is not due: it was answered in time.
    """
    if check is None or check.status is not CheckStatus.PENDING or utcnow() < check.expires_at:
        return 0.0
    if judging(check):
        return 0.0
    return settle(session, check, passed=False, code="expired", distance=None)


def check_for(user: User, check_id: int) -> Check:
    check = db.session.get(Check, check_id)
    if check is None or check.user_id != user.id:
        raise NotFound(_l("No such face check."))
    return check


@dataclass(frozen=True)
class Verdict:
    passed: bool
    code: str
    distance: float | None
    retry: bool
    voided_s: float


def validate_answer(user: User, check: Check, frames: list[bytes]) -> FaceReference:
    """What can refuse an answer without the face model; returns the reference to judge by."""
    if not frames:
        raise Invalid(fields={"image": _l("Send a photo, or several as 'frames'.")})
    if check.status is not CheckStatus.PENDING:
        raise Conflict(_l("This check is already closed."), code="check_closed", result=check.code)
    if judging(check):
        raise Conflict(_l("Your answer to this check is still being judged."), code="check_judging")
    reference = active_reference(user)
    if reference is None:
        raise Forbidden(_l("Enrol your face before studying."), code="face_not_enrolled")
    for data in frames:
        if len(data) > current_app.config["FACE_MAX_BYTES"]:
            raise PayloadTooLarge(_l("Each photo may be at most 10 MB."), code="image_too_large")
    return reference


def judge(user: User, check: Check, frames: list[bytes], *, session: Any) -> Verdict:
    """Judge an answer to a check: the burst's best frames against the reference.

    The one judging of answers, inside the request or in a job worker (`judging.py`). Refusals
    (AppError) are raised before anything changes, so a worker can keep them as the answer's
    result without undoing anything.
    """
    reference = validate_answer(user, check, frames)
    engine = faces()
    burst = engine.best_of_burst(frames, reference_encoding(reference), threshold=threshold())
    if all(frame.code == "not_an_image" for frame in burst.frames):
        raise Invalid(_l("None of the uploads is a photo."), code="not_an_image")
    check.attempts += 1
    replay = is_replay(
        [
            (data, frame.dhash)
            for data, frame in zip(frames, burst.frames, strict=True)
            if frame.code != "not_an_image"
        ],
        exclude_check=check.id,
    )
    code, passed, retry = _decide(check, burst, replay)
    for data, frame in zip(frames, burst.frames, strict=True):
        if frame.code in ("not_an_image", "image_too_large"):
            continue
        store_evidence(
            user,
            data,
            EvidenceKind.SNAPSHOT,
            dhash=frame.dhash,
            result=frame.code
            or (
                "match"
                if frame.distance is not None and engine.decide(frame.distance, threshold())
                else "no_match"
            ),
            distance=frame.distance,
            check=check,
            lesson_id=session.lesson_id,
            position_s=check.position_s,
        )
    distance = round(burst.distance, 4) if burst.distance is not None else None
    if retry:
        return Verdict(False, code, distance, True, 0.0)
    voided = settle(session, check, passed=passed, code=None if passed else code, distance=distance)
    return Verdict(passed, "passed" if passed else code, distance, False, voided)


def _decide(check: Check, burst: Any, replay: bool) -> tuple[str, bool, bool]:
    """(code, passed, retry): what the answer amounts to."""
    if replay:
        return "replay", False, False
    if burst.code == "no_face":
        # Ask again while the window is open; the deadline still fails it as expired.
        return "no_face", False, utcnow() < check.expires_at
    if burst.code == "multiple_faces" or burst.multiple_faces_seen:
        return "multiple_faces", False, False
    if not burst.passed:
        return "mismatch", False, False
    if current_app.config["LIVENESS"] and check.challenge:
        result = faces().liveness(burst.landmarks, check.challenge)
        if not result.passed:
            return "liveness_failed", False, False
    return "passed", True, False


# --- answers judged by job workers ---------------------------------------------------------


def checks_in_worker() -> bool:
    """Judge answers in job workers (202, then poll) rather than inside the request.

    CHECKS_IN_WORKER decides; unset, workers judge exactly when they are Celery processes:
    the embedded thread backend would only move the work to another thread of the same process.
    """
    setting = current_app.config.get("CHECKS_IN_WORKER")
    if setting is None:
        return current_app.config["JOB_BACKEND"] == "celery"
    return bool(setting)


def judging(check: Check) -> bool:
    """True while an answer to this check waits for a worker's verdict."""
    queued = sa.select(CheckAnswer.id).where(
        CheckAnswer.check_id == check.id, CheckAnswer.status == AnswerStatus.QUEUED
    )
    return db.session.scalar(queued.limit(1)) is not None


def latest_answer(check: Check) -> CheckAnswer | None:
    return db.session.scalar(
        sa.select(CheckAnswer)
        .where(CheckAnswer.check_id == check.id)
        .order_by(CheckAnswer.attempt.desc())
        .limit(1)
    )


def queue_answer(user: User, check: Check, frames: list[bytes]) -> CheckAnswer:
    """Keep an answer's frames privately for a worker to judge; flushed.

    The caller commits, then enqueues the `verify_check` job with the answer's id. Refused
    here as `judge` would refuse it, and with `check_judging` while an earlier answer waits.
    """
    # One answer at a time: a concurrent second answer waits here, then finds the first.
    check = db.session.scalars(
        sa.select(Check)
        .where(Check.id == check.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    validate_answer(user, check, frames)
    earlier = db.session.scalar(
        sa.select(sa.func.count()).select_from(CheckAnswer).where(CheckAnswer.check_id == check.id)
    )
    store = storage()
    folder = f"{ANSWER_PREFIX}/{check.id}/{uuid.uuid4().hex}"
    keys = []
    for number, data in enumerate(frames):
        key = f"{folder}/{number}"
        store.put_stream(
            key, io.BytesIO(data), content_type="application/octet-stream", length=len(data)
        )
        keys.append(key)
    answer = CheckAnswer(check_id=check.id, attempt=(earlier or 0) + 1, frame_keys=json.dumps(keys))
    db.session.add(answer)
    db.session.flush()
    return answer


def take_answer(answer_id: int) -> CheckAnswer | None:
    """Mark a queued answer judged in this transaction, so it is judged once; None if it is not
    queued (judged already, or taken by another worker, whose transaction this one waited for).
    """
    taken = db.session.execute(
        sa.update(CheckAnswer)
        .where(CheckAnswer.id == answer_id, CheckAnswer.status == AnswerStatus.QUEUED)
        .values(status=AnswerStatus.JUDGED, judged_at=utcnow())
    )
    if taken.rowcount != 1:
        return None
    return db.session.get(CheckAnswer, answer_id)


def answer_frames(answer: CheckAnswer) -> list[bytes]:
    store = storage()
    frames = []
    for key in json.loads(answer.frame_keys):
        with store.open(key) as stream:
            frames.append(stream.read())
    return frames


def record_verdict(answer: CheckAnswer, verdict: Verdict) -> None:
    answer.passed = verdict.passed
    answer.code = verdict.code
    answer.distance = verdict.distance
    answer.retry = verdict.retry
    answer.voided_s = round(verdict.voided_s, 3)


def record_refusal(answer: CheckAnswer, check: Check, error: AppError) -> None:
    """An answer `judge` refused (none of the frames is a photo...): the check is unchanged and
    may be answered again while its window is open, as after the same refusal in a request."""
    answer.passed = False
    answer.code = error.code
    answer.retry = check.status is CheckStatus.PENDING and utcnow() < check.expires_at
    answer.voided_s = 0.0


def abandon_answer(answer_id: int) -> CheckAnswer | None:
    """The worker gave up on a queued answer: the check may be answered again or expire."""
    answer = db.session.get(CheckAnswer, answer_id)
    if answer is None or answer.status is not AnswerStatus.QUEUED:
        return None
    check = db.session.get(Check, answer.check_id)
    answer.status = AnswerStatus.ABANDONED
    answer.judged_at = utcnow()
    answer.passed = False
    answer.code = "not_judged"
    answer.retry = check.status is CheckStatus.PENDING and utcnow() < check.expires_at
    answer.voided_s = 0.0
    return answer


def discard_frames(answer: CheckAnswer) -> None:
    """Delete the answer's waiting frames (what was judged is kept as evidence); repeatable."""
    store = storage()
    for key in json.loads(answer.frame_keys):
        store.delete(key)


def check_state(check: Check) -> dict[str, Any]:
    """A check as its trainee polls it: pending, judging (a worker has the answer), passed or
    failed, with the verdict fields of an answer (`judge`'s, or the latest answer's)."""
    state: dict[str, Any] = {
        **(check_json(check) or {}),
        "status": check.status.value,
        "passed": check.status is CheckStatus.PASSED,
        "code": None,
        "distance": check.distance,
        "retry": False,
        "voided_s": round(check.settled_s, 3) if check.status is CheckStatus.FAILED else 0.0,
    }
    if check.status is CheckStatus.PASSED:
        state["code"] = "passed"
    elif check.status is CheckStatus.FAILED:
        state["code"] = check.code
    else:
        answer = latest_answer(check)
        if answer is not None and answer.status is AnswerStatus.QUEUED:
            state["status"] = "judging"
        elif answer is not None:  # judged without closing the check: asked to answer again
            state.update(code=answer.code, distance=answer.distance, retry=answer.retry)
    return state


# --- staff decisions on identity ----------------------------------------------------------


def pending_references() -> list[FaceReference]:
    query = sa.select(FaceReference).where(FaceReference.status == FaceStatus.PENDING_APPROVAL)
    return list(db.session.scalars(query.order_by(FaceReference.created_at)))


def decide_reference(
    reference_id: int, *, approve: bool, staff: User | None, note: str = ""
) -> FaceReference:
    """Approve a re-enrolment (it replaces the active reference) or reject it."""
    reference = db.session.get(FaceReference, reference_id)
    if reference is None or reference.status is not FaceStatus.PENDING_APPROVAL:
        raise NotFound(_l("No re-enrolment waits for approval under this number."))
    if approve:
        user = db.session.get(User, reference.user_id)
        previous = active_reference(user)
        if previous is not None:
            previous.status = FaceStatus.REPLACED
        reference.status = FaceStatus.ACTIVE
    else:
        reference.status = FaceStatus.REJECTED
    reference.decided_by = staff.id if staff else None
    reference.decided_at = utcnow()
    audit.record_request(
        "face_reference.approve" if approve else "face_reference.reject",
        subject_type="user",
        subject_id=reference.user_id,
        detail={"reference": reference.id, "note": note or None},
        actor=staff,
    )
    return reference


def open_identity_flags() -> list[IdentityFlag]:
    query = sa.select(IdentityFlag).where(IdentityFlag.status == FlagStatus.OPEN)
    return list(db.session.scalars(query.order_by(IdentityFlag.created_at)))


def resolve_flag(
    flag_id: int, outcome: FlagStatus, note: str, *, staff: User | None
) -> IdentityFlag:
    """Close a flag: `cleared` (two different people: the trainee may study) or `confirmed`."""
    note = (note or "").strip()
    if outcome is FlagStatus.OPEN or not note:
        raise Invalid(fields={"note": _l("Say what was found; the decision is kept.")})
    flag = db.session.get(IdentityFlag, flag_id)
    if flag is None or flag.status is not FlagStatus.OPEN:
        raise NotFound(_l("No open identity flag has this number."))
    flag.status = outcome
    flag.note = note[:2000]
    flag.resolved_by = staff.id if staff else None
    flag.resolved_at = utcnow()
    audit.record_request(
        f"identity_flag.{outcome.value}",
        subject_type="user",
        subject_id=flag.user_id,
        detail={"flag": flag.id, "other_user": flag.other_user_id, "note": flag.note},
        actor=staff,
    )
    return flag
