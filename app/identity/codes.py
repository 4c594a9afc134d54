"""One-time SMS codes: issued under throttles, checked against a keyed digest, used up once.

A code is 6 random digits, valid SMS_CODE_TTL_S. Only the newest code for a purpose and phone
counts (asking again replaces the code). Every try is counted by one conditional UPDATE before
the code is compared, so parallel tries cannot exceed SMS_CODE_MAX_ATTEMPTS, and on PostgreSQL
the row stays locked until the try's transaction ends: of two parallel right tries, the second
finds the code used. Callers commit after `InvalidCode` (the try counts) and roll back after
any other error.
"""

from __future__ import annotations

import hmac
import math
import secrets
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import security
from app.db import rowcount, utcnow
from app.errors import Invalid, TooManyRequests
from app.extensions import db
from app.identity import sms
from app.identity.models import CodePurpose, SmsCode, User
from app.identity.throttle import Lockout, LoginThrottle
from app.jobs import schedule

CODE_DIGEST = "sms-code-digest"
PHONE_DIGEST = "sms-phone-digest"
CODE_DIGITS = 6
WRONG_CODE = _l("The code is wrong or has expired. Ask for a new code and try again.")
CODE_SENT = _l("A code has been sent to this mobile number.")
RESET_CODE_SENT = _l(
    "If this ID number belongs to an account with a mobile number, a code has been sent "
    "to that number."
)
PASSWORD_RESET_DONE = _l("Your password is changed. Sign in with the new password.")


class InvalidCode(Invalid):
    """A code that is missing, wrong, expired, used or tried too often: one answer for all."""

    code = "invalid_code"
    default_message = WRONG_CODE


def invalid_code(field: str = "code") -> InvalidCode:
    return InvalidCode(fields={field: WRONG_CODE})


def phone_digest(phone: str) -> str:
    return security.keyed_digest(PHONE_DIGEST, phone)


def _code_digest(purpose: CodePurpose, digest_of_phone: str, code: str) -> str:
    return security.keyed_digest(CODE_DIGEST, f"{purpose.value}:{digest_of_phone}:{code}")


def _throttle() -> LoginThrottle:
    return current_app.extensions["veriskill.login_throttle"]


def too_many(locked: Lockout) -> TooManyRequests:
    minutes = math.ceil(locked.retry_after_s / 60)
    return TooManyRequests(
        _l("Too many codes were asked for. Try again in %(minutes)d minutes.", minutes=minutes),
        code="too_many_requests",
        headers={"Retry-After": str(locked.retry_after_s)},
        retry_after_s=locked.retry_after_s,
    )


def count_address(address: str) -> None:
    """Count one code request from address; 429 once it has made too many in the window."""
    config = current_app.config
    locked = _throttle().window_attempt(
        f"sms:addr:{address}",
        limit=config["SMS_CODE_MAX_PER_ADDRESS"],
        window_s=config["SMS_CODE_WINDOW_S"],
    )
    if locked:
        raise too_many(locked)


def phone_lockout(purpose: CodePurpose, digest_of_phone: str) -> Lockout | None:
    """Count one code to this phone: a lockout within SMS_CODE_RESEND_S of the last one for
    the same purpose, or past SMS_CODE_MAX_PER_PHONE (all purposes) in the window."""
    config = current_app.config
    limits = _throttle()
    gap = f"sms:gap:{purpose.value}:{digest_of_phone}"
    return limits.hold(gap, config["SMS_CODE_RESEND_S"]) or (
        limits.window_attempt(
            f"sms:phone:{digest_of_phone}",
            limit=config["SMS_CODE_MAX_PER_PHONE"],
            window_s=config["SMS_CODE_WINDOW_S"],
        )
    )


def issue(purpose: CodePurpose, phone: str, *, user: User | None = None) -> SmsCode:
    """Text a new code to phone, then store its digest (flushed, not committed). A provider
    failure raises SmsUnavailable before anything is written; a code sent whose row is then
    rolled back is simply refused, and the trainee asks again."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    digest = phone_digest(phone)
    sms.send(phone, purpose.value, {"code": code})
    row = SmsCode(
        purpose=purpose,
        phone_digest=digest,
        user_id=user.id if user is not None else None,
        code_digest=_code_digest(purpose, digest, code),
        expires_at=utcnow() + timedelta(seconds=current_app.config["SMS_CODE_TTL_S"]),
    )
    db.session.add(row)
    db.session.flush()
    return row


def check(
    purpose: CodePurpose,
    phone: str,
    code: Any,
    *,
    user: User | None = None,
    field: str = "code",
) -> SmsCode:
    """The newest code for purpose and phone if `code` is it and it is live; else InvalidCode.

    The try is counted first (an atomic UPDATE that also locks the row); call `use` on the
    result in the same transaction to use it up."""
    text = "".join(code.split()) if isinstance(code, str) else ""
    digest = phone_digest(phone)
    query = sa.select(SmsCode).where(
        SmsCode.purpose == purpose, SmsCode.phone_digest == digest, SmsCode.used_at.is_(None)
    )
    if user is not None:
        query = query.where(SmsCode.user_id == user.id)
    row = db.session.scalar(query.order_by(SmsCode.id.desc()).limit(1))
    if row is None or not (len(text) == CODE_DIGITS and text.isdigit()):
        raise invalid_code(field)
    now = utcnow()
    counted = db.session.execute(
        sa.update(SmsCode)
        .where(
            SmsCode.id == row.id,
            SmsCode.used_at.is_(None),
            SmsCode.expires_at > now,
            SmsCode.attempts < current_app.config["SMS_CODE_MAX_ATTEMPTS"],
        )
        .values(attempts=SmsCode.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(counted) != 1:
        raise invalid_code(field)
    if not hmac.compare_digest(row.code_digest, _code_digest(purpose, digest, text)):
        raise invalid_code(field)
    return row


def use(row: SmsCode, *, field: str = "code") -> None:
    """Use the code up: of two requests holding it, only one gets here without InvalidCode."""
    used = db.session.execute(
        sa.update(SmsCode)
        .where(SmsCode.id == row.id, SmsCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if rowcount(used) != 1:
        raise invalid_code(field)
    db.session.expire(row)


@schedule.register("expire_sms_codes", "EXPIRY_SWEEP_S")
def delete_expired() -> int:
    """Delete codes past their life, used or not: an expired code proves nothing any more, and
    only the newest live code for a phone is ever looked at. Returns how many went."""
    return schedule.delete_in_batches(SmsCode, SmsCode.expires_at < utcnow())
