"""Reference faces, identity flags, face checks and retained image evidence."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.db import str_enum, utcnow
from app.extensions import Model


class FaceStatus(enum.StrEnum):
    ACTIVE = "active"  # the reference checks are judged against
    PENDING_APPROVAL = "pending_approval"  # a re-enrolment waiting for staff
    REPLACED = "replaced"
    REJECTED = "rejected"


class FaceReference(Model):
    """A trainee's enrolled face. The encoding is encrypted; the photo is kept as evidence.

    ``model`` names the face model that made the encoding (``media_pipeline.face_models``):
    checks are judged with that model until `flask faces reencode` re-encodes the photo with
    the configured one, which also moves ``encoded_at`` (the 1:N index refreshes from it).
    """

    __tablename__ = "face_reference"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    status: Mapped[FaceStatus] = mapped_column(str_enum(FaceStatus, length=20), index=True)
    encoding_cipher: Mapped[str] = mapped_column(sa.Text)
    model: Mapped[str] = mapped_column(sa.String(60), index=True)
    encoded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    evidence_id: Mapped[int] = mapped_column(sa.ForeignKey("evidence.id"))
    face_px: Mapped[int]
    blur: Mapped[float]
    brightness: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    decided_at: Mapped[datetime | None]


class FlagStatus(enum.StrEnum):
    OPEN = "open"
    CLEARED = "cleared"  # staff found two different people
    CONFIRMED = "confirmed"  # staff found one person behind two accounts


class IdentityFlag(Model):
    """A reason for an auditor to look at a trainee's identity.

    ``duplicate_identity``: the face enrolled scores within FACE_DUPLICATE_THRESHOLD of
    another trainee's reference; the trainee may not study until an auditor decides.
    ``possible_duplicate``: within the 1:1 FACE_THRESHOLD only; queued for an auditor, study
    goes on. ``score`` is in the terms of ``model``.
    """

    __tablename__ = "identity_flag"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(40))  # duplicate_identity, possible_duplicate
    other_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    score: Mapped[float | None]
    model: Mapped[str | None] = mapped_column(sa.String(60))
    status: Mapped[FlagStatus] = mapped_column(str_enum(FlagStatus), default=FlagStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    resolved_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(sa.Text)


class CheckKind(enum.StrEnum):
    SIGN_IN = "sign_in"  # when a session opens
    RANDOM = "random"  # at a moment the server alone chooses
    CLOSING = "closing"  # to confirm the time since the last check: the lesson is done


class CheckStatus(enum.StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    # Unanswered when its session ended (the trainee opened a lesson elsewhere): the time it
    # would have confirmed lapses, and nothing is said about who was there.
    CANCELLED = "cancelled"


class Check(Model):
    """One face check of a study session: asked by the server, answered by the camera."""

    __tablename__ = "face_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("study_session.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    kind: Mapped[CheckKind] = mapped_column(str_enum(CheckKind))
    challenge: Mapped[str | None] = mapped_column(sa.String(20))  # blink, turn_left, turn_right
    status: Mapped[CheckStatus] = mapped_column(
        str_enum(CheckStatus), default=CheckStatus.PENDING, index=True
    )
    code: Mapped[str | None] = mapped_column(sa.String(40))
    # The best frame's score, the threshold and the model that judged, in that model's terms.
    score: Mapped[float | None]
    threshold: Mapped[float | None]
    model: Mapped[str | None] = mapped_column(sa.String(60))
    position_s: Mapped[float | None]  # where in the lesson it was asked
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None] = mapped_column(index=True)  # statistics
    # Credited study time this check settled: kept when it passed, voided when it failed.
    settled_s: Mapped[float] = mapped_column(default=0.0)


class AnswerStatus(enum.StrEnum):
    QUEUED = "queued"  # frames stored, waiting for a worker
    JUDGED = "judged"
    ABANDONED = "abandoned"  # the worker gave up; the check waits for another answer or expires


class CheckAnswer(Model):
    """An answer to a face check judged by a job worker (CHECKS_IN_WORKER), not in the request.

    The frames wait in private storage under `frame_keys` until the worker has judged them
    (the verdict is then kept here and on the check, the frames as evidence) and are deleted.
    While an answer is queued its check cannot expire: it was answered in time.
    """

    __tablename__ = "check_answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(sa.ForeignKey("face_check.id"), index=True)
    attempt: Mapped[int]  # 1 for the check's first answer, 2 after a retry...
    frame_keys: Mapped[str] = mapped_column(sa.Text)  # JSON list of object keys
    status: Mapped[AnswerStatus] = mapped_column(
        str_enum(AnswerStatus), default=AnswerStatus.QUEUED, index=True
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    judged_at: Mapped[datetime | None]
    passed: Mapped[bool | None]
    code: Mapped[str | None] = mapped_column(sa.String(40))
    score: Mapped[float | None]
    retry: Mapped[bool] = mapped_column(default=False)
    voided_s: Mapped[float | None]

    __table_args__ = (sa.UniqueConstraint("check_id", "attempt"),)


class EvidenceKind(enum.StrEnum):
    REFERENCE = "reference"
    SNAPSHOT = "snapshot"


# A 64-bit perceptual hash is indexed in DHASH_CHUNKS pieces of CHUNK_BITS. Two hashes within
# k bits of each other differ by at most k // DHASH_CHUNKS bits in at least one piece (were
# every piece k // DHASH_CHUNKS + 1 bits apart, the hashes would be more than k apart), so
# looking up each piece of a hash and its neighbours within that many bits finds every stored
# hash within k: the same images a comparison with every stored hash finds.
DHASH_CHUNKS = 4
CHUNK_BITS = 64 // DHASH_CHUNKS


def dhash_chunks(value: int) -> tuple[int, ...]:
    """The hash's pieces, most significant first."""
    mask = (1 << CHUNK_BITS) - 1
    return tuple(
        (value >> (CHUNK_BITS * (DHASH_CHUNKS - 1 - i))) & mask for i in range(DHASH_CHUNKS)
    )


class Evidence(Model):
    """One retained face image: private storage, its hash, and what it was judged to be."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    kind: Mapped[EvidenceKind] = mapped_column(str_enum(EvidenceKind))
    check_id: Mapped[int | None] = mapped_column(sa.ForeignKey("face_check.id"), index=True)
    lesson_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lesson.id"))
    position_s: Mapped[float | None]
    key: Mapped[str | None] = mapped_column(sa.String(200))  # None once purged
    content_type: Mapped[str] = mapped_column(sa.String(40))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    # 64-bit perceptual hash as 16 hex digits, for near-duplicate (replay) detection.
    dhash: Mapped[str | None] = mapped_column(sa.String(16))
    # The hash in DHASH_CHUNKS pieces of CHUNK_BITS, each indexed: replay candidates are found
    # by exact look-ups of the pieces (see `dhash_chunks`), not by reading every hash.
    dhash_0: Mapped[int | None] = mapped_column(index=True)
    dhash_1: Mapped[int | None] = mapped_column(index=True)
    dhash_2: Mapped[int | None] = mapped_column(index=True)
    dhash_3: Mapped[int | None] = mapped_column(index=True)
    result: Mapped[str | None] = mapped_column(sa.String(40))  # match, no_match, no_face, ...
    score: Mapped[float | None]  # against the reference, in the terms of the check's model
    captured_at: Mapped[datetime] = mapped_column(default=utcnow)
    purge_after: Mapped[datetime]
    purged_at: Mapped[datetime | None]

    @validates("dhash")
    def _index_dhash(self, _key: str, value: str | None) -> str | None:
        """The indexed pieces always come from the hash they index."""
        chunks = dhash_chunks(int(value, 16)) if value is not None else (None,) * DHASH_CHUNKS
        self.dhash_0, self.dhash_1, self.dhash_2, self.dhash_3 = chunks
        return value

    @classmethod
    def dhash_columns(cls) -> tuple[sa.ColumnElement[int | None], ...]:
        return (cls.dhash_0, cls.dhash_1, cls.dhash_2, cls.dhash_3)  # type: ignore[return-value]


class PurgeRun(Model):
    """A record that `flask evidence purge` ran and what it removed."""

    __tablename__ = "evidence_purge"

    id: Mapped[int] = mapped_column(primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)
    purged: Mapped[int]
    cutoff: Mapped[datetime]
