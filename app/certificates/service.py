"""Issuing, revoking and verifying training certificates.

The subsidy rules call `issue` when an enrolment becomes eligible (or is approved) and `revoke`
when it is rejected later. Anyone may verify a certificate by its number; the verification
code printed beside the QR code shows that a paper copy is genuine, not only that the number
exists.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from contextlib import nullcontext
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app.certificates.models import Certificate
from app.db import savepoint, utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db
from app.identity.models import User, mask_name
from app.learning.models import Enrollment
from app.notifications import service as notifications

# Crockford's base32: no I, L, O or U, so nothing printed can be misread as something else;
# what people type is read back leniently (O as 0, I and L as 1, any case, spaces, dashes).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
NUMBER_BLOCK = 5
CODE_LENGTH = 8
NUMBER_PATTERN = re.compile(rf"^VS(\d{{4}})([{ALPHABET}]{{{NUMBER_BLOCK * 2}}})$")
MAX_INPUT = 40  # anything longer is not a number or a code of ours
MAX_HOURS = Decimal("100000")
REASON_MAX = 2000

NOT_FOUND = _l("No certificate has this number.")


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_number(year: int) -> str:
    """`VS2026-7KQ3M-X9D2R`: the year of issue and 50 random bits.

    Random rather than a sequence: the verification page is public, so a sequential number
    would let anyone walk every certificate ever issued and collect who holds which
    qualification (and would tell how many the bureau issues). Fifty bits make a guessed
    number hit a real one about once in 10^9 tries even with a million certificates, and ten
    characters in two blocks are still easy to read out over the phone.
    """
    block = _random(NUMBER_BLOCK * 2)
    return f"VS{year:04d}-{block[:NUMBER_BLOCK]}-{block[NUMBER_BLOCK:]}"


def new_verify_code() -> str:
    return _random(CODE_LENGTH)


def normalize_number(raw: str) -> str | None:
    """The canonical form of a number as a person may type it, or None if it cannot be one."""
    if not isinstance(raw, str) or len(raw) > MAX_INPUT:
        return None
    compact = re.sub(r"[\s\-_]", "", raw).upper().translate(READ_AS)
    match = NUMBER_PATTERN.match(compact)
    if match is None:
        return None
    year, block = match.groups()
    return f"VS{year}-{block[:NUMBER_BLOCK]}-{block[NUMBER_BLOCK:]}"


def normalize_code(raw: str) -> str:
    if not isinstance(raw, str) or len(raw) > MAX_INPUT:
        return ""
    return re.sub(r"[\s\-_]", "", raw).upper().translate(READ_AS)


def _hours(raw: Any) -> Decimal:
    problem = Invalid(fields={"hours": _l("Hours must be a number from 0 to 100,000.")})
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise problem
    if isinstance(raw, float) and not math.isfinite(raw):
        raise problem
    value = Decimal(str(raw))
    if not value.is_finite() or not Decimal(0) <= value <= MAX_HOURS:
        raise problem
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _local_year(moment: datetime) -> int:
    return moment.astimezone(ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])).year


def current_for(enrollment_id: int) -> Certificate | None:
    """The enrolment's live (unrevoked) certificate, if it has one."""
    return db.session.scalar(
        sa.select(Certificate).where(
            Certificate.enrollment_id == enrollment_id, Certificate.revoked_at.is_(None)
        )
    )


def issue(enrollment_id: int, *, hours: float) -> Certificate:
    """The enrolment's certificate: the live one if there is one, else a new one.

    Idempotent: calling it again returns the same certificate unchanged. After a revocation
    it issues a new certificate with a new number and code; the revoked one stays on record.
    `hours` are the verified study hours to print (kept to two decimals).
    """
    verified = _hours(hours)
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise NotFound(_l("No such enrolment."), code="enrollment_not_found")
    existing = current_for(enrollment.id)
    if existing is not None:
        return existing
    holder = db.session.get(User, enrollment.trainee_id)
    course = enrollment.course
    issued_at = utcnow()
    for _attempt in range(5):
        certificate = Certificate(
            number=new_number(_local_year(issued_at)),
            verify_code=new_verify_code(),
            enrollment_id=enrollment.id,
            user_id=enrollment.trainee_id,
            holder_name=holder.name if holder else "",
            occupation_code=course.occupation_code,
            occupation_name=course.occupation.name,
            course_title=course.title,
            level=course.level,
            hours=verified,
            issued_at=issued_at,
        )
        try:
            with savepoint(db.session):
                db.session.add(certificate)
        except IntegrityError:
            # Either a concurrent request issued one first (the partial unique index), or,
            # astronomically rarely, the random number was taken: answer with theirs or retry.
            existing = current_for(enrollment.id)
            if existing is not None:
                return existing
            continue
        notifications.notify(
            certificate.user_id,
            "certificate_issued",
            number=certificate.number,
            course=certificate.course_title,
            enrollment_id=enrollment.id,
        )
        return certificate
    raise RuntimeError("could not draw an unused certificate number")  # pragma: no cover


def revoke(enrollment_id: int, *, reason: str) -> Certificate | None:
    """Revoke the enrolment's live certificate; None when it has none (nothing to do)."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise Invalid(fields={"reason": _l("Say why the certificate is revoked.")})
    certificate = current_for(enrollment_id)
    if certificate is None:
        return None
    certificate.revoked_at = utcnow()
    certificate.revoke_reason = reason[:REASON_MAX]
    db.session.flush()
    notifications.notify(
        certificate.user_id,
        "certificate_revoked",
        number=certificate.number,
        course=certificate.course_title,
        reason=certificate.revoke_reason,
        enrollment_id=enrollment_id,
    )
    return certificate


def lookup(number: str, *, public: bool = False) -> Certificate:
    """The certificate with this number (as typed: case, spaces and O/0, I/1 do not matter).

    `public`: for the verification page and API, which answer everyone alike, a district
    officer included, so the lookup is not narrowed to their district (bureau.scope); callers
    show only the public fields. Otherwise a district officer finds their district's only."""
    from app.bureau import scope  # the scope module imports this domain's models

    canonical = normalize_number(number)
    with scope.narrowed_to(None) if public else nullcontext():
        certificate = (
            db.session.scalar(sa.select(Certificate).where(Certificate.number == canonical))
            if canonical
            else None
        )
    if certificate is None:
        raise NotFound(NOT_FOUND, code="certificate_not_found")
    return certificate


def code_matches(certificate: Certificate, code: str) -> bool:
    given = normalize_code(code)
    return bool(given) and hmac.compare_digest(given, certificate.verify_code)


def certificate_for(user: User, number: str) -> Certificate:
    """The certificate for its holder, or for staff; anyone else is refused."""
    certificate = lookup(number)
    if certificate.user_id != user.id and not user.is_staff:
        raise Forbidden(_l("Only the holder and the bureau's staff may open this certificate."))
    return certificate


def certificates_of(user_id: int) -> list[Certificate]:
    """Every certificate of a trainee, revoked ones too, newest first."""
    query = sa.select(Certificate).where(Certificate.user_id == user_id)
    return list(db.session.scalars(query.order_by(Certificate.issued_at.desc(), Certificate.id)))


def holder(certificate: Certificate) -> User | None:
    return db.session.get(User, certificate.user_id)


def name_for(certificate: Certificate, viewer: User) -> str:
    """The holder's name as `viewer` may see it: in full for the holder, masked (`张**`) for
    staff, who need the number and the facts to help, not the name."""
    if viewer.id == certificate.user_id:
        return certificate.holder_name
    return mask_name(certificate.holder_name)


def public_json(certificate: Certificate) -> dict[str, Any]:
    """What anyone may learn about a certificate from its number."""
    return {
        "valid": certificate.valid,
        "number": certificate.number,
        "name": mask_name(certificate.holder_name),
        "occupation_code": certificate.occupation_code,
        "occupation_name": certificate.occupation_name,
        "hours": float(certificate.hours),
        "issued_at": certificate.issued_at.isoformat(),
        "revoked_at": certificate.revoked_at.isoformat() if certificate.revoked_at else None,
    }


def verification_url(certificate: Certificate) -> str:
    """The absolute address of the certificate's public verification page.

    Built from the configured PUBLIC_BASE_URL, never from the request's Host header: a paper
    certificate outlives the request, and a forged Host must not send its readers elsewhere.
    """
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return base + url_for("certificates.verify", number=certificate.number)


def printed_url(certificate: Certificate) -> str:
    """What the printed QR code holds: the verification page with the code filled in."""
    return f"{verification_url(certificate)}?{urlencode({'code': certificate.verify_code})}"
