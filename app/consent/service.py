"""Consent to face processing: give it, read it, withdraw it (which erases the face data).

No face is processed without a standing consent to the current version of the text:
verification asks `require` before it enrols a face, opens a study session or judges a
check's answer. Withdrawing ends the consent and has verification erase the trainee's face
data at once, keeping only the photos behind a subsidy decision already made (README,
"Consent and privacy").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.consent import texts
from app.consent.models import Consent
from app.db import savepoint, utcnow
from app.errors import Forbidden, Invalid
from app.extensions import db
from app.identity.models import Role, User

FACE = texts.FACE
WITHDRAWN = "withdrawn"
SUPERSEDED = "superseded"


def standing(user_id: int, purpose: str) -> Consent | None:
    """The consent to ``purpose`` the trainee has not withdrawn, at whatever version."""
    return db.session.scalar(
        sa.select(Consent).where(
            Consent.user_id == user_id, Consent.purpose == purpose, Consent.ended_at.is_(None)
        )
    )


def has_consent(user_id: int, purpose: str = FACE) -> bool:
    """A standing consent to the current version of the purpose's text."""
    consent = standing(user_id, purpose)
    return consent is not None and consent.version == texts.CURRENT[purpose]


def require(user: User, purpose: str = FACE) -> None:
    """Refuse face processing (403 `consent_required`) without a recorded consent."""
    if not has_consent(user.id, purpose):
        raise Forbidden(
            _l(
                "Face processing needs your consent first. Read and accept it on the page "
                "\u201cConsent to face processing\u201d."
            ),
            code="consent_required",
        )


def last_withdrawal(user_id: int, purpose: str = FACE) -> Consent | None:
    return db.session.scalar(
        sa.select(Consent)
        .where(
            Consent.user_id == user_id,
            Consent.purpose == purpose,
            Consent.ended_because == WITHDRAWN,
        )
        .order_by(Consent.ended_at.desc())
        .limit(1)
    )


def required_json(purpose: str) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "version": texts.CURRENT[purpose],
        "title": str(texts.TITLES[purpose]),
        "text": texts.plain_text(purpose),
    }


def status_json(user: User) -> dict[str, Any]:
    """What the trainee still has to consent to (at the current version), and what stands."""
    given = []
    required = []
    for purpose in texts.CURRENT:
        consent = standing(user.id, purpose)
        if consent is not None:
            given.append(
                {
                    "purpose": consent.purpose,
                    "version": consent.version,
                    "given_at": consent.given_at.isoformat(),
                }
            )
        if not has_consent(user.id, purpose):
            required.append(required_json(purpose))
    return {"required": required, "given": given}


def _purpose(raw: Any) -> str:
    if not isinstance(raw, str) or raw not in texts.CURRENT:
        raise Invalid(
            _l("Consent can be given only to face processing (face_verification)."),
            code="unknown_purpose",
            fields={"purpose": _l("Use face_verification.")},
        )
    return raw


@dataclass(frozen=True)
class Given:
    consent: Consent
    created: bool  # False: it was already given (idempotent)


def give(user: User, purpose: Any, version: Any) -> Given:
    """Record consent to the current version of a purpose's text; giving it again changes
    nothing. A consent to an older version is superseded by this one."""
    if user.role is not Role.TRAINEE:
        raise Forbidden(_l("Only trainees consent to face processing."))
    purpose = _purpose(purpose)
    current = texts.CURRENT[purpose]
    if version != current:
        raise Invalid(
            _l("This is not the current consent text. Reload the page and read the text in force."),
            code="consent_version_outdated",
            fields={"version": _l("Use version %(version)s.", version=current)},
        )
    existing = standing(user.id, purpose)
    if existing is not None and existing.version == current:
        return Given(existing, created=False)
    now = utcnow()
    if existing is not None:
        existing.ended_at = now
        existing.ended_because = SUPERSEDED
    consent = Consent(user_id=user.id, purpose=purpose, version=current, given_at=now)
    try:
        with savepoint(db.session):
            db.session.add(consent)
    except IntegrityError:
        # Given by a concurrent request a moment ago (the partial unique index): that one stands.
        again = standing(user.id, purpose)
        if again is None:  # pragma: no cover - the index allows only this cause
            raise
        return Given(again, created=False)
    audit.record_request(
        "consent.give",
        subject_type="user",
        subject_id=user.id,
        detail={"purpose": purpose, "version": current, "consent": consent.id},
        actor=user,
    )
    return Given(consent, created=True)


@dataclass(frozen=True)
class Withdrawn:
    purpose: str
    withdrawn_at: datetime
    was_given: bool
    references_deleted: int
    images_deleted: int
    images_kept: int  # behind subsidy decisions already made, kept for their retention period


def withdraw(user: User, purpose: Any) -> Withdrawn:
    """End the consent and erase the face data now: every reference face and its encoding,
    and every stored image but those behind a subsidy decision already made. Repeatable: a
    second withdrawal finds nothing left to erase."""
    from app.verification import service as verification  # it asks `require` of this module

    purpose = _purpose(purpose)
    if user.role is not Role.TRAINEE:
        raise Forbidden(_l("Only trainees consent to face processing."))
    now = utcnow()
    consent = standing(user.id, purpose)
    if consent is not None:
        consent.ended_at = now
        consent.ended_because = WITHDRAWN
        db.session.flush()
    erased = verification.erase_face_data(user, now=now)
    audit.record_request(
        "consent.withdraw",
        subject_type="user",
        subject_id=user.id,
        detail={
            "purpose": purpose,
            "version": consent.version if consent else None,
            "consent": consent.id if consent else None,
            "references_deleted": erased.references,
            "images_deleted": erased.images_deleted,
            "images_kept": erased.images_kept,
        },
        actor=user,
    )
    return Withdrawn(
        purpose,
        now,
        consent is not None,
        erased.references,
        erased.images_deleted,
        erased.images_kept,
    )


def withdrawal_meaning() -> list[str]:
    """What a withdrawal means for the trainee, in their language."""
    return [str(line) % texts.retention() for line in WITHDRAWAL_MEANING]


WITHDRAWAL_MEANING = (
    _l(
        "Your enrolled face, its encoding and the photos that do not back a subsidy decision "
        "are deleted now. No face check is judged for you any more."
    ),
    _l(
        "Photos behind a subsidy decision already made stay with the bureau for %(days)d days "
        "after that decision, as evidence for public money; then they are deleted."
    ),
    _l(
        "Online study of courses that need face checks can no longer be credited toward a "
        "subsidy. Time not yet confirmed by a check is not counted."
    ),
    _l(
        "The alternative: ask for the bureau's offline route, an identity check in person at "
        "the public employment service hall of your district (bring your resident ID card)."
    ),
    _l("You may consent again at any time and enrol your face again to study online."),
)


def withdrawn_json(result: Withdrawn) -> dict[str, Any]:
    return {
        "purpose": result.purpose,
        "withdrawn_at": result.withdrawn_at.isoformat(),
        "was_given": result.was_given,
        "deleted": {
            "reference_faces": result.references_deleted,
            "images": result.images_deleted,
        },
        "kept": {"images": result.images_kept},
        "meaning": withdrawal_meaning(),
    }
