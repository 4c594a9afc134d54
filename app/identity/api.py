"""JSON endpoints for accounts and tokens."""

from __future__ import annotations

from flask import current_app, g, jsonify

from app.audit import service as audit
from app.errors import AppError
from app.extensions import db
from app.http import json_body
from app.identity import bp, service
from app.identity.auth import address, api_auth, api_user, bearer_token
from app.identity.models import User
from app.identity.views import start_session
from app.timeutil import today_local


def user_json(user: User) -> dict:
    return {
        "id": user.id,
        "role": user.role.value,
        "name": user.name,
        "username": user.username,
        "id_number": user.id_number_masked,
        "phone": user.phone_masked,
        "birth_date": user.birth_date.isoformat() if user.birth_date else None,
        "sex": user.sex.value if user.sex else None,
    }


@bp.post("/api/v1/auth/register")
def api_register():
    service.register_allowed(address())
    user = service.register_trainee(json_body(), today=today_local())
    db.session.commit()
    return jsonify({"id": user.id}), 201


@bp.post("/api/v1/auth/token")
def api_token():
    body = json_body()
    try:
        user = service.authenticate(
            body.get("login"),
            body.get("password"),
            address=address(),
            captcha_id=body.get("captcha_id"),
            captcha_answer=body.get("captcha_answer"),
            via="api",
        )
    except AppError:
        db.session.commit()  # the audit entries of the failure stay
        raise
    token, row = service.issue_token(
        user, ttl_s=current_app.config["TOKEN_TTL_S"], label="api sign-in"
    )
    audit.record_request("token.issue", subject_type="api_token", subject_id=row.id, actor=user)
    db.session.commit()
    return jsonify({"token": token, "expires_at": row.expires_at.isoformat()})


@bp.delete("/api/v1/auth/token")
@api_auth()
def api_revoke_token():
    """Sign the calling token out."""
    token = bearer_token()
    row = g.get("api_token")
    if token and service.revoke_token(token) and row is not None:
        audit.record_request("token.revoke", subject_type="api_token", subject_id=row.id)
        db.session.commit()
    return "", 204


@bp.post("/api/v1/me/password")
@api_auth()
def api_change_password():
    """Change the caller's password: every browser session and every other token ends."""
    body = json_body()
    try:
        service.change_password(
            api_user(),
            body.get("current_password"),
            body.get("new_password"),
            address=address(),
            keep_token=g.get("api_token"),
        )
    except AppError as error:
        if error.status != 422:
            db.session.commit()  # a wrong current password is counted and recorded
        raise
    db.session.commit()
    if g.get("api_token") is None:  # a signed-in browser: it stays signed in, alone
        start_session(api_user())
    return "", 204


@bp.get("/api/v1/me")
@api_auth()
def api_me():
    return jsonify(user_json(api_user()))
