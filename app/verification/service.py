"""Identity verification: enrol a reference face, ask and judge face checks, keep the evidence.

Money follows confirmed time. This module asks checks and judges their answers; what a result
does to study time and money is the study workflow's (`app/study/workflow.py`): a pass confirms
the time credited since the last check, a failure voids it. The face engine is imported
lazily: loading it costs about a second and 125 MB, which only processes that verify faces
should pay.

Every encoding is made and compared by one face model (``media_pipeline.face_models``); a
reference is judged by the model that encoded it, with that model's thresholds, so references
enrolled before a model change keep working until `flask faces reencode` has moved them.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql

from app import security
from app.audit import service as audit
from app.db import rowcount, utcnow
from app.errors import AppError, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge
from app.extensions import db
from app.identity.models import User
from app.media.service import storage
from app.notifications import service as notifications
from app.observability import metrics
from app.verification.models import (
    CHUNK_BITS,
    DHASH_CHUNKS,
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
    dhash_chunks,
)
from media_pipeline.limits import MAX_BURST_FRAMES, MAX_IMAGE_BYTES, MIB
from media_pipeline.storage import ObjectNotFound

ENCODING_KEY = "face-encoding"
CHALLENGES = ("blink", "turn_left", "turn_right")
# Answers to one check: after a mismatch, no face or a failed liveness challenge the trainee
# may try again while the window is open, this many times in all; the last result counts.
CHECK_MAX_ATTEMPTS = 3
RETRYABLE = ("mismatch", "no_face", "liveness_failed")
# Seconds the player shows a check's prompt (and a liveness challenge) before the camera
# takes its burst: time to read it and start to move. Without a challenge it only has to see
# a still face, so it waits a moment less.
PROMPT_LEAD_S = 3
PROMPT_LEAD_STILL_S = 1
# A closing check explains why it comes (to confirm the time just studied): longer to read.
PROMPT_LEAD_CLOSING_EXTRA_S = 2
# Where answers judged by workers keep their frames until judged (private, deleted after).
ANSWER_PREFIX = "check-answers"
# Other trainees flagged at most per enrolment, the closest first.
DUPLICATE_MAX_CANDIDATES = 5
# The 1:N index re-reads references encoded this long before the newest it has seen, so a
# transaction that committed late is not missed.
INDEX_OVERLAP = timedelta(minutes=5)


def faces() -> ModuleType:
    from media_pipeline import faces as engine

    return engine


def face_models() -> ModuleType:
    from media_pipeline import face_models as models

    return models


def model() -> Any:
    """The configured face model (FACE_MODEL), loaded once per process."""
    return face_models().load(
        current_app.config["FACE_MODEL"], input_scale=current_app.config["FACE_MODEL_INPUT"]
    )


def model_named(name: str) -> Any | None:
    """The model that made encodings named ``name``, if this process can run it: the configured
    one, dlib, or the vendored default; None for an ONNX file no longer configured."""
    configured = model()
    if name == configured.name:
        return configured
    models = face_models()
    if name == models.DLIB:
        return models.load(models.DLIB)
    if not models.VENDORED_MODEL.is_file():  # FACE_MODEL=dlib or a file of one's own
        return None
    vendored = models.load(models.DEFAULT_MODEL)
    return vendored if name == vendored.name else None


def thresholds(face_model: Any) -> Any:
    """The match and duplicate thresholds of a model: FACE_THRESHOLD and
    FACE_DUPLICATE_THRESHOLD for the configured model, else the model's own defaults."""
    defaults = face_model.defaults
    match = duplicate = None
    if face_model is model():
        match = current_app.config.get("FACE_THRESHOLD")
        duplicate = current_app.config.get("FACE_DUPLICATE_THRESHOLD")
    match = match if match is not None else (defaults.match if defaults else None)
    duplicate = duplicate if duplicate is not None else (defaults.duplicate if defaults else None)
    if match is None or duplicate is None:
        raise RuntimeError(
            f"FACE_THRESHOLD and FACE_DUPLICATE_THRESHOLD must be set for {face_model.name}"
        )
    return face_models().Thresholds(
        match=face_model.check_threshold(float(match)),
        duplicate=face_model.check_threshold(float(duplicate)),
    )


def threshold() -> float:
    """The configured model's 1:1 threshold."""
    return float(thresholds(model()).match)


def closer(model_name: str, a: float, b: float) -> bool:
    """Of two scores of the model named ``model_name``, ``a`` is the more alike."""
    models = face_models()
    return models.closer(models.metric_of(model_name), a, b)


def describe_score(score: float | None, model_name: str | None, limit: float | None = None) -> str:
    """A score as a person reads it, with which way is "alike" and the threshold if known."""
    if score is None or model_name is None:
        return "—"
    values = {"s": f"{score:.3f}", "t": f"{limit:.2f}" if limit is not None else ""}
    if face_models().metric_of(model_name) == "distance":
        if limit is None:
            return str(_l("face distance %(s)s (lower is more alike)", **values))
        return str(_l("face distance %(s)s (the same person at %(t)s or less)", **values))
    if limit is None:
        return str(_l("face similarity %(s)s (higher is more alike)", **values))
    return str(_l("face similarity %(s)s (the same person at %(t)s or more)", **values))


def require_consent(user: User) -> None:
    """No face processing without a recorded consent (403 `consent_required`)."""
    # Imported here: consent's withdrawal erases face data through this module.
    from app.consent import service as consent

    consent.require(user)


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
    score: float | None = None,
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
        score=score,
        captured_at=now,
        purge_after=now + timedelta(days=current_app.config["EVIDENCE_RETENTION_DAYS"]),
    )
    db.session.add(evidence)
    db.session.flush()
    return evidence


def is_replay(images: list[tuple[bytes, int]], *, exclude_check: int) -> bool:
    """True when any of these images (bytes and perceptual hash) was submitted before.

    Compared with every retained image of anyone, references included, except the earlier
    attempts at the same check: a byte-identical copy is a replay; a stored image within
    `NEAR_DUPLICATE_MAX_BITS` of perceptual hash is only a candidate, read back and compared
    pixel by pixel (`same_picture`), since look-alike frames of different scenes and moments
    share hashes by chance. One query for exact copies and one indexed query for candidates
    (`replay_candidates`), whatever the burst's length and however many images are stored.
    """
    earlier = _earlier_than(exclude_check)
    digests = [hashlib.sha256(data).hexdigest() for data, _ in images]
    exact = sa.select(Evidence.id).where(Evidence.sha256.in_(digests), earlier).limit(1)
    if db.session.scalar(exact):
        return True
    if not images:
        return False
    engine = faces()
    for key, value in replay_candidates([dhash for _, dhash in images], earlier=earlier):
        near = [data for data, dhash in images if engine.is_near_duplicate(dhash, value)]
        if near and _matches_stored(engine, key, near):
            return True
    return False


def _earlier_than(check_id: int) -> sa.ColumnElement[bool]:
    """Stored images a check's answer is compared with: all but its own earlier attempts."""
    return sa.or_(Evidence.check_id.is_(None), Evidence.check_id != check_id)


def _neighbours(chunk: int, radius: int) -> set[int]:
    """Every piece within ``radius`` bits of ``chunk`` (itself included)."""
    found = {chunk}
    for flips in range(1, radius + 1):
        for bits in itertools.combinations(range(CHUNK_BITS), flips):
            found.add(chunk ^ sum(1 << bit for bit in bits))
    return found


def replay_candidates(
    hashes: list[int], *, earlier: sa.ColumnElement[bool] | None = None
) -> list[tuple[str, int]]:
    """Stored images (key, hash) within `NEAR_DUPLICATE_MAX_BITS` of any of ``hashes``, among
    those ``earlier`` admits: exactly the ones a pass over every stored hash would find, through
    one query on the indexed pieces of the hash (see `app.verification.models.DHASH_CHUNKS`).
    """
    if not hashes:
        return []
    engine = faces()
    radius = engine.NEAR_DUPLICATE_MAX_BITS // DHASH_CHUNKS
    probes: list[set[int]] = [set() for _ in range(DHASH_CHUNKS)]
    for value in hashes:
        for piece, chunk in enumerate(dhash_chunks(value)):
            probes[piece] |= _neighbours(chunk, radius)
    query = sa.select(Evidence.key, Evidence.dhash).where(
        sa.or_(
            *(
                _one_of(column, values)
                for column, values in zip(Evidence.dhash_columns(), probes, strict=True)
            )
        ),
        Evidence.key.is_not(None),
    )
    if earlier is not None:
        query = query.where(earlier)
    # Most rows share a piece with a frame by chance; the whole hash decides. This is
    # `faces.is_near_duplicate` unrolled, for it runs for every such row (a million images:
    # about ten thousand a check): is_replay asks `is_near_duplicate` itself of each one found.
    limit = engine.NEAR_DUPLICATE_MAX_BITS
    found = []
    for key, stored in db.session.execute(query):
        if key is None or stored is None:  # excluded by the query; said again for the types
            continue
        value = int(stored, 16)
        if any((candidate ^ value).bit_count() <= limit for candidate in hashes):
            found.append((key, value))
    return found


def _one_of(column: sa.ColumnElement[int | None], values: set[int]) -> sa.ColumnElement[bool]:
    """``column IN values``: on PostgreSQL one array parameter, not a thousand of them."""
    if db.session.get_bind().dialect.name == "postgresql":
        array = sa.bindparam(None, sorted(values), type_=postgresql.ARRAY(sa.Integer))
        return column == sa.any_(array)
    return column.in_(sorted(values))


def _matches_stored(engine: ModuleType, key: str, candidates: list[bytes]) -> bool:
    """One of the ``candidates`` is the stored image at ``key``, give or take re-encoding."""
    try:
        with storage().open(key) as stream:
            stored = engine.decode_image(stream.read())
    except (ObjectNotFound, engine.FaceError):
        return False  # purged since, or unreadable: nothing to be a copy of
    return any(engine.same_picture(engine.decode_image(data), stored) for data in candidates)


def purge_evidence(rows: list[Evidence], now: datetime) -> None:
    """Delete the stored images of these evidence rows and mark the rows purged (they stay,
    without a key). Used by the retention purge and by a withdrawal of consent.

    The images go first, before the caller commits: a run that dies in between leaves rows
    still unpurged, which the next run deletes again (deleting a missing object is no
    error), and never an image that no row remembers.
    """
    store = storage()
    for evidence in rows:
        if evidence.key is not None:
            store.delete(evidence.key)
        evidence.key = None
        evidence.purged_at = now


@dataclass(frozen=True)
class Erased:
    references: int
    images_deleted: int
    images_kept: int


def erase_face_data(user: User, *, now: datetime) -> Erased:
    """A trainee withdrew consent: delete every reference face (so every encoding) and every
    stored image, but the images behind a subsidy decision already made (granted, approved or
    rejected): those stay until their retention date, as the evidence behind public money,
    and `flask evidence purge` removes them then. Flushed; the caller commits. Repeatable."""
    from app.learning.models import Enrollment, StudySession
    from app.subsidy.models import Action, Decision

    decided = (
        sa.select(Decision.enrollment_id)
        .join(Enrollment, Enrollment.id == Decision.enrollment_id)
        .where(
            Enrollment.trainee_id == user.id,
            Decision.action.in_([Action.APPROVE, Action.REJECT, Action.ELIGIBLE]),
        )
    )
    backing_checks = (
        sa.select(Check.id)
        .join(StudySession, StudySession.id == Check.session_id)
        .where(Check.user_id == user.id, StudySession.enrollment_id.in_(decided))
    )
    has_decision = db.session.scalar(decided.limit(1)) is not None
    backing: sa.ColumnElement[bool] = Evidence.check_id.in_(backing_checks)
    if has_decision:  # the reference the snapshots were compared with backs them too
        backing = sa.or_(backing, Evidence.kind == EvidenceKind.REFERENCE)
    stored = sa.and_(Evidence.user_id == user.id, Evidence.purged_at.is_(None))
    doomed = list(
        db.session.scalars(
            sa.select(Evidence).where(stored, sa.not_(backing)).order_by(Evidence.id)
        )
    )
    kept = db.session.scalar(
        sa.select(sa.func.count()).select_from(Evidence).where(stored, backing)
    )
    references = rowcount(
        db.session.execute(
            sa.delete(FaceReference)
            .where(FaceReference.user_id == user.id)
            .execution_options(synchronize_session="fetch")
        )
    )
    purge_evidence(doomed, now)
    db.session.flush()
    return Erased(int(references or 0), len(doomed), int(kept or 0))


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


def _encrypted(face_model: Any, encoding: Any) -> str:
    return security.encrypt(ENCODING_KEY, face_model.to_bytes(encoding).hex())


def _decrypted(face_model: Any, cipher: str) -> Any:
    return face_model.from_bytes(bytes.fromhex(security.decrypt(ENCODING_KEY, cipher)))


def reference_encoding(reference: FaceReference) -> tuple[Any, Any]:
    """The model a reference is judged by and its encoding. A reference whose model this
    process cannot run (an ONNX file replaced before `flask faces reencode` reached it) is
    re-encoded from its photo with the configured model first."""
    face_model = model_named(reference.model)
    if face_model is None:
        face_model = model()
        reencode(reference, face_model)
    return face_model, _decrypted(face_model, reference.encoding_cipher)


def reencode(reference: FaceReference, face_model: Any) -> None:
    """Encode a reference's retained photo again with ``face_model``; raises AppError (stored
    image missing or no longer one face) and leaves the reference as it was then."""
    _apply_encoding(reference, face_model, _encode_photo(reference, face_model))


def _encode_photo(reference: FaceReference, face_model: Any) -> str:
    """The encrypted encoding of a reference's retained photo by ``face_model``; writes
    nothing, so no write lock is held through the face work."""
    evidence = db.session.get(Evidence, reference.evidence_id)
    gone = Conflict(_l("The photo behind this reference face is gone."), code="reference_gone")
    if evidence is None or evidence.key is None:
        raise gone
    try:
        with storage().open(evidence.key) as stream:
            data = stream.read()
    except ObjectNotFound:
        raise gone from None
    engine = faces()
    try:
        rgb = engine.decode_image(data)
        analysis = engine.analyze(rgb, purpose="check", model=face_model)
    except engine.FaceError as error:
        raise _face_error(error) from None
    return _encrypted(face_model, analysis.encoding)


def _apply_encoding(reference: FaceReference, face_model: Any, cipher: str) -> None:
    reference.encoding_cipher = cipher
    reference.model = face_model.name
    reference.encoded_at = utcnow()


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
    require_consent(user)
    engine = faces()
    face_model = model()
    try:
        rgb = engine.decode_image(data, max_bytes=MAX_IMAGE_BYTES)
        analysis = engine.analyze(rgb, purpose="enrol", model=face_model)
    except engine.FaceError as error:
        raise _face_error(error) from None
    dhash = engine.near_duplicate_hash(rgb)
    evidence = store_evidence(user, data, EvidenceKind.REFERENCE, dhash=dhash, result="enrolled")
    previous = active_reference(user)
    status = FaceStatus.PENDING_APPROVAL if previous and has_studied(user) else FaceStatus.ACTIVE
    reference = FaceReference(
        user_id=user.id,
        status=status,
        encoding_cipher=_encrypted(face_model, analysis.encoding),
        model=face_model.name,
        encoded_at=utcnow(),
        evidence_id=evidence.id,
        face_px=analysis.quality.face_px,
        blur=round(analysis.quality.blur, 2),
        brightness=round(analysis.quality.brightness, 2),
    )
    if status is FaceStatus.ACTIVE and previous is not None:
        previous.status = FaceStatus.REPLACED
    db.session.add(reference)
    flags = _flag_duplicates(user, analysis.encoding, face_model)
    db.session.flush()
    if flags:
        strictest = min(flags, key=lambda flag: flag.code != "duplicate_identity")
        notifications.notify(user.id, "identity_flag", code=strictest.code, flag_id=strictest.id)
    return Enrolment(reference, flags)


def _flag_duplicates(user: User, encoding: Any, face_model: Any) -> list[IdentityFlag]:
    """One face, one identity: another trainee's active reference within the 1:1 threshold is
    a candidate for an auditor. Within the stricter duplicate threshold it is taken to be the
    same person (``duplicate_identity``: no study until decided); between the two it is only
    queued for review (``possible_duplicate``). See README, "One face, one identity"."""
    limits = thresholds(face_model)
    flags = []
    for candidate in duplicate_candidates(user.id, encoding, face_model, limits.match):
        same = face_model.accepts(candidate.score, limits.duplicate)
        flag = IdentityFlag(
            user_id=user.id,
            code="duplicate_identity" if same else "possible_duplicate",
            other_user_id=candidate.user_id,
            score=round(candidate.score, 4),
            model=face_model.name,
        )
        db.session.add(flag)
        flags.append(flag)
    return flags


@dataclass
class _CachedIndex:
    index: Any
    encoded_at: dict[int, datetime] = field(default_factory=dict)
    newest: datetime | None = None


_indexes: dict[str, _CachedIndex] = {}
_indexes_lock = threading.Lock()


def duplicate_candidates(user_id: int, encoding: Any, face_model: Any, limit: float) -> list[Any]:
    """Active references of other trainees within ``limit`` of ``encoding``, closest first,
    from this process's index of every reference of ``face_model`` (refreshed here from what
    was encoded since the last look). Each hit is confirmed against the database: one no
    longer active is passed over, one whose row no longer matches the index (a database
    restored under a running process) is dropped from it and the search run again."""
    from media_pipeline.face_index import ReferenceIndex

    with _indexes_lock:
        cached = _indexes.get(face_model.name)
        if cached is None:
            cached = _indexes[face_model.name] = _CachedIndex(ReferenceIndex(face_model))
        _refresh(cached, face_model)
        while True:
            found = cached.index.search(
                encoding, threshold=limit, exclude_user=user_id, limit=DUPLICATE_MAX_CANDIDATES
            )
            rows = {
                row.id: row
                for row in db.session.execute(
                    sa.select(
                        FaceReference.id,
                        FaceReference.user_id,
                        FaceReference.status,
                        FaceReference.model,
                        FaceReference.encoded_at,
                    ).where(FaceReference.id.in_([c.reference_id for c in found]))
                )
            }
            stale = [
                c.reference_id
                for c in found
                if c.reference_id not in rows
                or rows[c.reference_id].user_id != c.user_id
                or rows[c.reference_id].model != face_model.name
                or rows[c.reference_id].encoded_at != cached.encoded_at.get(c.reference_id)
            ]
            if not stale:
                return [c for c in found if rows[c.reference_id].status is FaceStatus.ACTIVE]
            cached.index.drop(stale)
            for reference_id in stale:
                cached.encoded_at.pop(reference_id, None)


def _refresh(cached: _CachedIndex, face_model: Any) -> None:
    query = sa.select(
        FaceReference.id,
        FaceReference.user_id,
        FaceReference.encoded_at,
        FaceReference.encoding_cipher,
    ).where(FaceReference.model == face_model.name)
    if cached.newest is not None:
        query = query.where(FaceReference.encoded_at >= cached.newest - INDEX_OVERLAP)
    for reference_id, user_id, encoded_at, cipher in db.session.execute(query):
        if cached.encoded_at.get(reference_id) == encoded_at:
            continue
        cached.index.put(reference_id, user_id, _decrypted(face_model, cipher))
        cached.encoded_at[reference_id] = encoded_at
        if cached.newest is None or encoded_at > cached.newest:
            cached.newest = encoded_at


def open_flags(user: User) -> list[IdentityFlag]:
    return list(
        db.session.scalars(
            sa.select(IdentityFlag).where(
                IdentityFlag.user_id == user.id, IdentityFlag.status == FlagStatus.OPEN
            )
        )
    )


def confirmed_duplicate(user: User) -> bool:
    """Staff found that this account's face is a person who already has an account: the
    account is closed to study ("same person"; only "different people" reopens it)."""
    return (
        db.session.scalar(
            sa.select(IdentityFlag.id)
            .where(IdentityFlag.user_id == user.id, IdentityFlag.status == FlagStatus.CONFIRMED)
            .limit(1)
        )
        is not None
    )


def require_verified_identity(user: User) -> None:
    """Studying needs an enrolled face, no open duplicate-identity flag (a possible duplicate
    is only queued for an auditor) and no flag staff confirmed as the same person; and, before
    all, a standing consent to face processing."""
    require_consent(user)
    if active_reference(user) is None:
        raise Forbidden(_l("Enrol your face before studying."), code="face_not_enrolled")
    if confirmed_duplicate(user):
        raise Forbidden(
            _l(
                "An auditor found that you already study under another account; this one is "
                "closed. Contact the bureau if this is wrong."
            ),
            code="identity_duplicate",
        )
    if any(flag.code == "duplicate_identity" for flag in open_flags(user)):
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
        "under_review": any(flag.code == "duplicate_identity" for flag in open_flags(user)),
        "closed": confirmed_duplicate(user),
        "enrolled_at": reference.created_at.isoformat() if reference else None,
    }


# --- checks -------------------------------------------------------------------------------


def open_check(session_id: int, user_id: int, kind: CheckKind, position_s: float | None) -> Check:
    challenge = secrets.choice(CHALLENGES) if current_app.config["LIVENESS"] else None
    check = Check(
        session_id=session_id,
        user_id=user_id,
        kind=kind,
        challenge=challenge,
        position_s=position_s,
        expires_at=utcnow() + timedelta(seconds=current_app.config["CHECK_WINDOW_S"]),
    )
    db.session.add(check)
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
        "attempts": check.attempts,
        "max_attempts": CHECK_MAX_ATTEMPTS,
    }


def latest_check(session_id: int) -> Check | None:
    return db.session.scalar(
        sa.select(Check).where(Check.session_id == session_id).order_by(Check.id.desc()).limit(1)
    )


def lock_check(check_id: int) -> Check:
    """The check row, locked and read afresh: answers and expiry of one check go one at a time."""
    return db.session.scalars(
        sa.select(Check)
        .where(Check.id == check_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


@dataclass(frozen=True)
class Judged:
    """How a check's answer was compared: the best frame's score, the threshold and the model,
    in that model's terms."""

    score: float | None
    threshold: float
    model: str


def close_check(
    check: Check, *, passed: bool, code: str | None, judged: Judged | None, settled_s: float
) -> None:
    """Record a check's final result; ``settled_s`` is the study time it confirmed (passed) or
    voided (failed). ``judged`` is None for a check no answer decided (expired, session ended)."""
    check.status = CheckStatus.PASSED if passed else CheckStatus.FAILED
    check.code = code
    check.score = judged.score if judged else None
    check.threshold = judged.threshold if judged else None
    check.model = judged.model if judged else None
    check.answered_at = utcnow()
    check.settled_s = round(settled_s, 3)
    metrics.face_check(check.kind.value, "passed" if passed else code or "failed")
    if not passed:
        kind = "check_missed" if code == "expired" else "check_failed"
        notifications.notify(
            check.user_id, kind, code=code, check_id=check.id, session_id=check.session_id
        )


def cancel_check(check: Check, *, code: str) -> None:
    """Close an unanswered check that no longer decides anything (its session ended)."""
    check.status = CheckStatus.CANCELLED
    check.code = code
    check.answered_at = utcnow()


def due_to_expire(check: Check | None) -> bool:
    """A pending check whose window has closed. One whose answer waits for a worker is not:
    it was answered in time."""
    if check is None or check.status is not CheckStatus.PENDING or utcnow() < check.expires_at:
        return False
    return not judging(check)


def check_for(user: User, check_id: int) -> Check:
    check = db.session.get(Check, check_id)
    if check is None or check.user_id != user.id:
        raise NotFound(_l("No such face check."))
    return check


@dataclass(frozen=True)
class Verdict:
    """What one answer amounts to. ``retry``: the check stays open for another attempt;
    otherwise the check is decided (``judged`` says how) and the workflow closes it."""

    passed: bool
    code: str
    score: float | None
    retry: bool
    judged: Judged


def validate_answer(user: User, check: Check, frames: list[bytes]) -> FaceReference:
    """What can refuse an answer without the face model; returns the reference to judge by."""
    if not frames:
        raise Invalid(fields={"image": _l("Send a photo, or several as 'frames'.")})
    if check.status is not CheckStatus.PENDING:
        raise Conflict(_l("This check is already closed."), code="check_closed", result=check.code)
    if judging(check):
        raise Conflict(_l("Your answer to this check is still being judged."), code="check_judging")
    # Withdrawn meanwhile (the worker judges later): refused, and the refusal is recorded.
    require_consent(user)
    reference = active_reference(user)
    if reference is None:
        raise Forbidden(_l("Enrol your face before studying."), code="face_not_enrolled")
    if len(frames) > MAX_BURST_FRAMES:
        raise Invalid(fields={"frames": _l("At most %(n)d frames.", n=MAX_BURST_FRAMES)})
    for data in frames:
        if len(data) > MAX_IMAGE_BYTES:
            raise too_large()
    return reference


def too_large() -> PayloadTooLarge:
    """The refusal of a photo over MAX_IMAGE_BYTES."""
    message = _l("Each photo may be at most %(mb)d MB.", mb=MAX_IMAGE_BYTES // MIB)
    return PayloadTooLarge(message, code="image_too_large")


@dataclass(frozen=True)
class Compared:
    """An answer's burst compared with the reference: the face work, done before any lock."""

    face_model: Any
    threshold: float
    burst: Any


def compare(user: User, check: Check, frames: list[bytes]) -> Compared:
    """Run the face model over an answer (about a second, holding no lock on the database).
    Refusals (AppError) come before anything is judged: the check stays open."""
    reference = validate_answer(user, check, frames)
    engine = faces()
    face_model, encoding = reference_encoding(reference)
    limit = thresholds(face_model).match
    with metrics.face_model_timer("check"):
        burst = engine.best_of_burst(frames, encoding, model=face_model, threshold=limit)
    unusable = [frame.code for frame in burst.frames]
    if all(code in ("not_an_image", "image_too_large") for code in unusable):
        # Nothing to judge: refused like a bad upload, and the check stays open.
        if "image_too_large" in unusable:
            megapixels = engine.MAX_DECODE_PIXELS // 1_000_000
            raise PayloadTooLarge(
                _l(
                    "The photos are too large; send camera frames of at most %(mp)d megapixels.",
                    mp=megapixels,
                ),
                code="image_too_large",
            )
        raise Invalid(_l("None of the uploads is a photo."), code="not_an_image")
    return Compared(face_model, limit, burst)


def judge(
    user: User, check: Check, frames: list[bytes], compared: Compared, *, lesson_id: int
) -> Verdict:
    """Judge a compared answer: replay, liveness, the verdict; counts the attempt and keeps
    the frames as evidence. The one judging of answers, inside the request or in a job
    worker; call it with the check locked and read afresh (it may have closed meanwhile, which
    is refused before anything changes). Closing the check is the caller's, once it knows
    what the result does to study time."""
    validate_answer(user, check, frames)
    face_model, limit, burst = compared.face_model, compared.threshold, compared.burst
    check.attempts += 1
    replay = is_replay(
        [
            (data, frame.dhash)
            for data, frame in zip(frames, burst.frames, strict=True)
            if frame.dhash is not None
        ],
        exclude_check=check.id,
    )
    code, passed, retry = _decide(check, burst, replay)
    for index in kept_frames(burst):
        frame = burst.frames[index]
        matched = frame.score is not None and face_model.accepts(frame.score, limit)
        store_evidence(
            user,
            frames[index],
            EvidenceKind.SNAPSHOT,
            dhash=frame.dhash,
            result=frame.code or ("match" if matched else "no_match"),
            score=frame.score,
            check=check,
            lesson_id=lesson_id,
            position_s=check.position_s,
        )
    score = round(burst.score, 4) if burst.score is not None else None
    judged = Judged(score=score, threshold=limit, model=face_model.name)
    return Verdict(passed, code, score, retry, judged)


def kept_frames(burst: Any) -> list[int]:
    """Which frames of an answer are kept as evidence: those compared with the reference and
    those that showed several faces. A frame with one face after the one that matched was not
    compared and shows nothing more; a frame without a face is kept only when no frame had
    one, so the auditor can see what the camera saw."""
    kept = [
        frame.index
        for frame in burst.frames
        if frame.score is not None or frame.code == "multiple_faces"
    ]
    if kept:
        return kept
    usable = [frame.index for frame in burst.frames if frame.dhash is not None]
    return usable[:1]


def _decide(check: Check, burst: Any, replay: bool) -> tuple[str, bool, bool]:
    """(code, passed, retry): what the answer amounts to. A replay or a second face fails at
    once; the other failures may be tried again (`RETRYABLE`) while tries and time are left."""
    if replay:
        return "replay", False, False
    if burst.multiple_faces_seen or burst.code == "multiple_faces":
        return "multiple_faces", False, False
    if burst.code == "no_face":
        code = "no_face"
    elif not burst.passed:
        code = "mismatch"
    elif current_app.config["LIVENESS"] and check.challenge:
        result = faces().liveness(burst.landmarks, check.challenge)
        code = "passed" if result.passed else "liveness_failed"
    else:
        code = "passed"
    if code == "passed":
        return code, True, False
    retry = (
        code in RETRYABLE and check.attempts < CHECK_MAX_ATTEMPTS and utcnow() < check.expires_at
    )
    return code, False, retry


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
    if rowcount(taken) != 1:
        return None
    return db.session.get(CheckAnswer, answer_id)


def answer_frames(answer: CheckAnswer) -> list[bytes]:
    store = storage()
    frames = []
    for key in json.loads(answer.frame_keys):
        with store.open(key) as stream:
            frames.append(stream.read())
    return frames


def record_verdict(answer: CheckAnswer, verdict: Verdict, *, voided_s: float) -> None:
    answer.passed = verdict.passed
    answer.code = verdict.code
    answer.score = verdict.score
    answer.retry = verdict.retry
    answer.voided_s = round(voided_s, 3)


def record_refusal(answer: CheckAnswer, check: Check, error: AppError) -> None:
    """An answer `judge` refused (none of the frames is a photo...): the check is unchanged and
    may be answered again while its window is open, as after the same refusal in a request."""
    answer.passed = False
    answer.code = error.code
    answer.retry = check.status is CheckStatus.PENDING and utcnow() < check.expires_at
    answer.voided_s = 0.0


def abandon_answer(answer_id: int) -> CheckAnswer | None:
    """No worker judged a queued answer (it gave up, or the answer waited longer than
    CHECK_JUDGE_MAX_WAIT_S): hand it back as `not_judged`. The trainee answered in time, so the
    check's window opens afresh for another answer. None if the answer is no longer queued: a
    worker took it first (the conditional update waits for that worker's transaction)."""
    now = utcnow()
    taken = db.session.execute(
        sa.update(CheckAnswer)
        .where(CheckAnswer.id == answer_id, CheckAnswer.status == AnswerStatus.QUEUED)
        .values(
            status=AnswerStatus.ABANDONED,
            judged_at=now,
            passed=False,
            code="not_judged",
            voided_s=0.0,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(taken) != 1:
        return None
    answer = db.session.get_one(CheckAnswer, answer_id, populate_existing=True)
    check = lock_check(answer.check_id)
    if check.status is CheckStatus.PENDING:
        window = timedelta(seconds=current_app.config["CHECK_WINDOW_S"])
        check.expires_at = max(check.expires_at, now + window)
    answer.retry = check.status is CheckStatus.PENDING
    return answer


def late_answers(max_wait_s: float, limit: int = 100) -> list[int]:
    """Queued answers received more than `max_wait_s` ago, oldest first."""
    received_before = utcnow() - timedelta(seconds=max_wait_s)
    return list(
        db.session.scalars(
            sa.select(CheckAnswer.id)
            .where(
                CheckAnswer.status == AnswerStatus.QUEUED,
                CheckAnswer.received_at < received_before,
            )
            .order_by(CheckAnswer.id)
            .limit(limit)
        )
    )


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
        "score": check.score,
        "threshold": check.threshold,
        "model": check.model,
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
            state.update(code=answer.code, score=answer.score, retry=answer.retry)
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
        user = db.session.get_one(User, reference.user_id)
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


# --- moving references to another face model -----------------------------------------------

# References a trainee is or may soon be judged against; the others keep the model they had.
REENCODED_STATUSES = (FaceStatus.ACTIVE, FaceStatus.PENDING_APPROVAL)


def _not_yet_reencoded(face_model: Any) -> Any:
    return sa.and_(
        FaceReference.status.in_(REENCODED_STATUSES), FaceReference.model != face_model.name
    )


def references_left(face_model: Any) -> int:
    """References still encoded by another model than ``face_model``."""
    query = sa.select(sa.func.count()).select_from(FaceReference)
    return int(db.session.scalar(query.where(_not_yet_reencoded(face_model))) or 0)


@dataclass(frozen=True)
class ReencodeBatch:
    done: list[int]
    failed: dict[int, str]  # reference id -> the refusal's code


def reencode_batch(face_model: Any, *, size: int, skip: set[int]) -> ReencodeBatch:
    """Re-encode up to ``size`` references from their photos with ``face_model``, leaving out
    ``skip`` (references that failed before in this run); the caller commits. Idempotent:
    a reference already of ``face_model`` is never picked, so a run that dies is run again."""
    query = sa.select(FaceReference).where(_not_yet_reencoded(face_model))
    if skip:
        query = query.where(FaceReference.id.not_in(skip))
    encoded: list[tuple[FaceReference, str]] = []
    failed: dict[int, str] = {}
    for reference in db.session.scalars(query.order_by(FaceReference.id).limit(size)).all():
        try:
            encoded.append((reference, _encode_photo(reference, face_model)))
        except AppError as error:
            failed[reference.id] = error.code
    # Written together at the end: the batch's face work holds no lock on the database.
    for reference, cipher in encoded:
        _apply_encoding(reference, face_model, cipher)
    return ReencodeBatch([reference.id for reference, _ in encoded], failed)


def reencode_all(
    face_model: Any, *, batch: int, report: Callable[[int, int, dict[int, str]], None]
) -> dict[int, str]:
    """Re-encode, a committed batch at a time, every reference not yet of ``face_model``;
    ``report(done, total, failed)`` after each batch. Returns the references that could not be
    re-encoded (id -> refusal code): they keep their model."""
    total = references_left(face_model)
    failed: dict[int, str] = {}
    done = 0
    while True:
        result = reencode_batch(face_model, size=batch, skip=set(failed))
        db.session.commit()
        if not result.done and not result.failed:
            return failed
        done += len(result.done)
        failed.update(result.failed)
        report(done, total, failed)
