"""Evidence and reference-face rows made straight in the database, for tests that need a
trainee's face records to exist (pages, scopes) rather than to be judged by the face model."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.db import utcnow
from app.extensions import db
from app.verification.models import Evidence, EvidenceKind, FaceReference, FaceStatus


def evidence_row(user_id: int, kind: EvidenceKind, **fields: Any) -> Evidence:
    """A retained image's row (the object itself is not stored)."""
    row = Evidence(
        user_id=user_id,
        kind=kind,
        key=f"evidence/rows/{user_id}-{kind.value}-{fields.get('check_id')}.jpg",
        content_type="image/jpeg",
        sha256=f"{user_id:064d}",
        purge_after=utcnow() + timedelta(days=1095),
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def reference_row(user_id: int, status: FaceStatus) -> FaceReference:
    """A reference face in `status`, with its enrolment photo's evidence row."""
    photo = evidence_row(user_id, EvidenceKind.REFERENCE, result="enrolled")
    row = FaceReference(
        user_id=user_id,
        status=status,
        encoding_cipher="rows",
        model="sface",
        evidence_id=photo.id,
        face_px=240,
        blur=200.0,
        brightness=120.0,
    )
    db.session.add(row)
    db.session.flush()
    return row
