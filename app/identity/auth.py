"""Who is calling the JSON API: a bearer token, or a signed-in browser session with CSRF."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.errors import Forbidden, Unauthorized
from app.extensions import csrf, login_manager
from app.identity import service
from app.identity.models import Role, User

F = TypeVar("F", bound=Callable[..., Any])
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
        user = service.user_for_token(token) if token else None
        if user is None:
            raise Unauthorized(
                _l("The API token is missing, expired or revoked."), code="invalid_token"
            )
    elif current_user.is_authenticated:
        if request.method in UNSAFE_METHODS:
            csrf.protect()
        user = current_user._get_current_object()
    g.api_user = user
    return user


def api_auth(*roles: Role) -> Callable[[F], F]:
    """Require an authenticated caller, with one of `roles` when any are given."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = api_user()
            if user is None:
                raise Unauthorized()
            if roles and user.role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def role_required(*roles: Role) -> Callable[[F], F]:
    """Pages: signed in with one of roles, else sign-in redirect (anonymous) or 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
