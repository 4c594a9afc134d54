"""Who is calling the JSON API: a bearer token, or a signed-in browser session with CSRF."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import current_app, g, render_template, request, session
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.audit import service as audit
from app.errors import AppError, Forbidden, Unauthorized
from app.extensions import csrf, db, login_manager
from app.http import json_body
from app.identity import service
from app.identity.models import Role, User

# Decorated views keep their signature: P their parameters, R what they return.
P = ParamSpec("P")
R = TypeVar("R")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The session key holding when its person last gave their password (sign-in or prompt).
AUTHENTICATED_AT = "authenticated_at"


def address() -> str:
    return request.remote_addr or "unknown"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_user() -> User | None:
    """The caller, or None when the request carries no credentials at all.

    A token that is present but wrong is an error, never a silent fallback to the session.
    Browsers calling the API with their session cookie must send the CSRF token
    (header X-CSRFToken) on every state-changing request.
    """
    if "api_user" in g:
        return g.api_user
    user: User | None = None
    if request.headers.get("Authorization"):
        token = bearer_token()
        row = service.live_token(token) if token else None
        if row is None:
            raise Unauthorized(
                _l("The API token is missing, expired or revoked."), code="invalid_token"
            )
        g.api_token = row
        user = row.user
    elif current_user.is_authenticated:
        if request.method in UNSAFE_METHODS:
            csrf.protect()
        user = current_user._get_current_object()
    g.api_user = user
    return user


def current_api_user() -> User:
    """The caller of a view behind `api_auth`, which has already turned anonymous callers away.

    Never None, so views need no check of their own; called where `api_auth` did not run it
    is the code's mistake, not the client's, and fails loudly rather than answering 401.
    """
    user: User | None = g.get("api_user")
    if user is None:
        raise RuntimeError("current_api_user() called in a view without @api_auth")
    return user


def api_auth(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require an authenticated caller, with one of `roles` when any are given."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            user = api_user()
            if user is None:
                raise Unauthorized()
            if roles and user.role not in roles:
                raise Forbidden()
            if user.password_change_required and request.endpoint not in API_OPEN_WITH_TEMPORARY:
                raise Forbidden(
                    _l("Choose a new password first: staff gave this account a temporary one."),
                    code="password_change_required",
                )
            return view(*args, **kwargs)

        return wrapper

    return decorate


# What an account with a staff-issued temporary password may still call: enough to replace
# it (pages have their own list in identity.views).
API_OPEN_WITH_TEMPORARY = frozenset(
    {"identity.api_change_password", "identity.api_me", "identity.api_revoke_token"}
)


def role_required(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Pages: signed in with one of roles, else sign-in redirect (anonymous) or 403."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapper

    return decorate


def reauth_due() -> bool:
    """Whether the signed-in person last proved their password more than REAUTH_S ago."""
    at = float(session.get(AUTHENTICATED_AT, 0))
    return time.time() - at > current_app.config["REAUTH_S"]


def reauth_prompt(error: str | None = None, status: int = 200):
    """Ask for the password again, carrying every field of the form that was sent (the
    auditor's typed reason among them) back to the same address."""
    fields = [
        (name, value)
        for name, value in request.form.items(multi=True)
        if name not in ("csrf_token", "reauth_password")
    ]
    html = render_template(
        "identity/reauth.html", fields=fields, action=request.full_path.rstrip("?"), error=error
    )
    return html, status


def reauthenticated(view: Callable[P, R]) -> Callable[P, R]:
    """Pages: a decision goes through only if the password was given within REAUTH_S; else
    the password prompt, which sends the same form back with the password. Reading the page
    (GET) needs no password."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if (
            request.method not in UNSAFE_METHODS
            or not current_user.is_authenticated
            or not reauth_due()
        ):
            return view(*args, **kwargs)
        password = request.form.get("reauth_password")
        if password is None:
            return reauth_prompt()
        try:
            service.confirm_password(current_user, password, address=address())
        except AppError as error:
            db.session.commit()  # the failure is counted and recorded
            return reauth_prompt(str(error.message), error.status)
        session[AUTHENTICATED_AT] = time.time()
        audit.record_request("reauth", subject_type="user", subject_id=current_user.id)
        db.session.commit()
        return view(*args, **kwargs)

    return wrapper


def api_reauthenticated(view: Callable[P, R]) -> Callable[P, R]:
    """API: a decision goes through only if the caller's last authentication (the token's
    issue, or the browser session's sign-in or password prompt) is within REAUTH_S, or the
    body carries the caller's `password`; else `401 reauth_required`. Put it below
    `api_auth`."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        user = api_user()
        token = g.get("api_token")
        if token is not None:
            at = token.created_at.timestamp()
        else:
            at = float(session.get(AUTHENTICATED_AT, 0))
        if user is None or time.time() - at <= current_app.config["REAUTH_S"]:
            return view(*args, **kwargs)
        password = json_body().get("password")
        if password is None:
            raise Unauthorized(
                _l("Confirm your password to record this decision."), code="reauth_required"
            )
        try:
            service.confirm_password(user, password, address=address())
        except AppError:
            db.session.commit()  # the failure is counted and recorded
            raise
        if token is None:
            session[AUTHENTICATED_AT] = time.time()
        audit.record_request("reauth", subject_type="user", subject_id=user.id, actor=user)
        db.session.commit()
        return view(*args, **kwargs)

    return wrapper
