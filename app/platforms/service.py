"""Approving platforms, their API tokens, suspension."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.bureau import service as bureau
from app.db import savepoint, utcnow
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.identity import service as identity
from app.identity.models import ApiToken, Role, User
from app.inputs import visible_strip
from app.platforms.models import Platform, PlatformStatus

LABEL_MAX = 100


def _service_account(platform: Platform) -> User:
    user = db.session.scalar(sa.select(User).where(User.platform_id == platform.id))
    if user is None:  # every platform is created with one; its absence is a data error
        raise NotFound(_l("This platform has no service account."))
    return user


def create(
    name: str,
    *,
    contact_name: str = "",
    contact_phone: str = "",
    contact_email: str = "",
    district_code: str | None = None,
) -> Platform:
    """An approved platform and its service account; `district_code`: where it is registered
    (None: it serves the whole city)."""
    name = " ".join(name.split())
    if not 2 <= len(name) <= 100:
        raise Invalid(fields={"name": _l("Use 2 to 100 characters.")})
    if district_code is not None:
        bureau.get_district(district_code)
    taken = Conflict(_l("A platform with this name exists."), code="platform_exists")
    if db.session.scalar(sa.select(Platform.id).where(Platform.name == name)):
        raise taken
    platform = Platform(
        name=name,
        contact_name=contact_name.strip()[:64],
        contact_phone=contact_phone.strip()[:32],
        contact_email=contact_email.strip()[:254],
        district_code=district_code,
    )
    try:
        with savepoint(db.session):
            db.session.add(platform)
            db.session.flush()
            db.session.add(
                User(
                    role=Role.PLATFORM,
                    username=f"platform-{platform.id}",
                    name=name[:64],
                    platform_id=platform.id,
                    password_hash=identity.unusable_password_hash(),
                )
            )
    except IntegrityError:
        raise taken from None
    _log(
        "platform.create",
        platform,
        {"name": platform.name, "status": platform.status.value, "district": district_code},
    )
    return platform


def _log(action: str, platform: Platform, detail: dict[str, Any]) -> None:
    """Staff decisions on platforms go into the audit log, from the pages and the CLI alike.
    Token secrets never do."""
    audit.record_request(action, subject_type="platform", subject_id=platform.id, detail=detail)


def get(platform_id: int) -> Platform:
    platform = db.session.get(Platform, platform_id)
    if platform is None:
        raise NotFound(_l("No such platform."))
    return platform


def by_name(name: str) -> Platform:
    platform = db.session.scalar(sa.select(Platform).where(Platform.name == name))
    if platform is None:
        raise NotFound(_l("No such platform."))
    return platform


def all_platforms() -> list[Platform]:
    return list(db.session.scalars(sa.select(Platform).order_by(Platform.name)))


def token_label(raw: str) -> str:
    """A token's label, trimmed: what it is for (a server, a staging copy), so an admin who
    revokes one knows which integration stops."""
    label = " ".join(visible_strip(raw).split())
    if not 1 <= len(label) <= LABEL_MAX:
        raise Invalid(
            _l("Give the token a label of 1 to %(n)d characters.", n=LABEL_MAX),
            code="invalid_label",
            fields={"label": _l("Use 1 to %(n)d characters.", n=LABEL_MAX)},
        )
    return label


def issue_token(platform: Platform, label: str) -> tuple[str, ApiToken]:
    """A new token for the platform: returned once, stored only as a hash."""
    label = token_label(label)
    ttl_s = current_app.config["PLATFORM_TOKEN_TTL_DAYS"] * 24 * 3600
    token, row = identity.issue_token(_service_account(platform), ttl_s=ttl_s, label=label)
    _log("platform.token_issue", platform, {"token_id": row.id, "label": row.label})
    return token, row


def tokens(platform: Platform) -> list[ApiToken]:
    return identity.tokens_of(_service_account(platform))


def token_of(platform: Platform, token_id: int) -> ApiToken:
    row = next((t for t in tokens(platform) if t.id == token_id), None)
    if row is None:
        raise NotFound(_l("This platform has no such token."))
    return row


def token_state(row: ApiToken, now: datetime | None = None) -> str:
    """`active`, `expired` or `revoked`: what a list of tokens says about each."""
    if row.revoked_at is not None:
        return "revoked"
    return "active" if row.usable_at(now or utcnow()) else "expired"


def revoke_token(platform: Platform, token_id: int) -> ApiToken:
    row = identity.revoke_token_id(_service_account(platform), token_id)
    if row is None:
        raise NotFound(_l("This platform has no such token."))
    _log("platform.token_revoke", platform, {"token_id": token_id})
    return row


def set_status(platform: Platform, status: PlatformStatus) -> None:
    """Suspending stops every token of the platform at once; activating restores them."""
    before = platform.status
    platform.status = status
    action = "platform.suspend" if status is PlatformStatus.SUSPENDED else "platform.activate"
    _log(action, platform, {"from": before.value, "to": status.value})


def platform_of(user: User) -> Platform:
    """The platform an API caller acts for."""
    if user.role is not Role.PLATFORM or user.platform is None:
        raise NotFound(_l("This account acts for no platform."))
    return user.platform


def describe(platform: Platform) -> dict[str, Any]:
    return {
        "id": platform.id,
        "name": platform.name,
        "status": platform.status.value,
        "contact_name": platform.contact_name,
        "contact_phone": platform.contact_phone,
        "contact_email": platform.contact_email,
    }
