"""District scope: what a district officer's requests can read, decided in one place.

Every ORM select the session runs while a district officer is the caller gets criteria that
keep only their district's trainees and what belongs to those trainees (enrolments, sessions,
checks, evidence, flags, decisions ...). Views and services query as usual; a row outside the
district is simply not found, so a page, an API route and an export cannot disagree about it.

The caller is the request's authenticated user (bearer token or signed-in session). Work done
outside a request for a district officer (an export job) names the district with `narrowed_to`.
Core statements run on a connection, and UPDATE/DELETE statements, are not narrowed: services
load the rows they change through the ORM first, and that load is narrowed.

Every model that refers to a trainee is listed in `NARROWED` or, with the reason, in
`NOT_NARROWED`; a test fails when a new model is in neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy import orm

from app.bureau.models import TraineeGroup
from app.certificates.models import Certificate
from app.consent.models import Consent
from app.identity.models import ApiToken, Role, SmsCode, User
from app.learning.models import Enrollment, HeartbeatRecord, LessonProgress, StudySession
from app.notifications.models import Notification
from app.subsidy.models import Appeal, Decision, QueueEntry, SpotCheck
from app.verification.models import Check, CheckAnswer, Evidence, FaceReference, IdentityFlag

# A district officer whose account names no district sees no trainee at all.
NO_DISTRICT = ""
_CITY = object()  # the caller is not narrowed
_explicit: ContextVar[object] = ContextVar("district_scope", default=None)

# How each narrowed model reaches its trainee: (column, what the column refers to).
NARROWED: dict[type, tuple[str, str]] = {
    User: ("id", "user"),
    Enrollment: ("trainee_id", "user"),
    StudySession: ("trainee_id", "user"),
    Check: ("user_id", "user"),
    Evidence: ("user_id", "user"),
    FaceReference: ("user_id", "user"),
    IdentityFlag: ("user_id", "user"),
    Certificate: ("user_id", "user"),
    Consent: ("user_id", "user"),
    Notification: ("user_id", "user"),
    TraineeGroup: ("user_id", "user"),
    LessonProgress: ("enrollment_id", "enrollment"),
    Decision: ("enrollment_id", "enrollment"),
    SpotCheck: ("enrollment_id", "enrollment"),
    Appeal: ("enrollment_id", "enrollment"),
    QueueEntry: ("enrollment_id", "enrollment"),
    HeartbeatRecord: ("session_id", "session"),
    CheckAnswer: ("check_id", "check"),
}
NOT_NARROWED: dict[type, str] = {
    ApiToken: "read only to authenticate the caller, before the scope is known",
    SmsCode: "read only to sign in or reset a password, by the person themself",
}


def district_of_caller() -> str | None:
    """The district the current work is narrowed to, or None for city-wide (and trainees,
    platforms and anonymous callers, whom other rules confine)."""
    explicit = _explicit.get()
    if explicit is not None:
        return None if explicit is _CITY else str(explicit)
    if not has_request_context():
        return None
    user = g.get("api_user") or g.get("_login_user")
    if not isinstance(user, User) or user.id is None:
        return None
    cached = g.get("_district_scope")
    if cached is not None and cached[0] == user.id:
        return cached[1]
    role, code = _role_and_district(user)
    scope = (code or NO_DISTRICT) if role is Role.DISTRICT_OFFICER else None
    g._district_scope = (user.id, scope)
    return scope


def _role_and_district(user: User) -> tuple[Role, str | None]:
    """Read without the ORM: an expired attribute would reload through the hook below."""
    loaded: dict[str, Any] = sa.inspect(user).dict
    if "role" in loaded and "district_code" in loaded:
        return loaded["role"], loaded["district_code"]
    from app.extensions import db

    row = (
        db.session.connection()
        .execute(
            sa.select(User.__table__.c.role, User.__table__.c.district_code).where(
                User.__table__.c.id == user.id
            )
        )
        .one()
    )
    return Role(row.role), row.district_code


@contextmanager
def narrowed_to(district_code: str | None) -> Iterator[None]:
    """Run work outside a request as a district officer of `district_code` (None: city-wide)."""
    token = _explicit.set(_CITY if district_code is None else district_code)
    try:
        yield
    finally:
        _explicit.reset(token)


def _criteria(code: str) -> list[Any]:
    visible_users = sa.select(User.id).where(
        sa.or_(User.role != Role.TRAINEE, User.district_code == code)
    )
    refers_to = {
        "user": visible_users,
        "enrollment": sa.select(Enrollment.id).where(Enrollment.trainee_id.in_(visible_users)),
        "session": sa.select(StudySession.id).where(StudySession.trainee_id.in_(visible_users)),
        "check": sa.select(Check.id).where(Check.user_id.in_(visible_users)),
    }
    options = [
        orm.with_loader_criteria(
            User,
            sa.or_(User.role != Role.TRAINEE, User.district_code == code),
            include_aliases=True,
        )
    ]
    for model, (column, target) in NARROWED.items():
        if model is not User:
            options.append(
                orm.with_loader_criteria(
                    model, getattr(model, column).in_(refers_to[target]), include_aliases=True
                )
            )
    return options


@sa.event.listens_for(orm.Session, "do_orm_execute")
def _narrow(state: orm.ORMExecuteState) -> None:
    if not state.is_select or state.is_column_load:
        return
    code = district_of_caller()
    if code is not None:
        state.statement = state.statement.options(*_criteria(code))
