"""JSON endpoints for accounts and tokens."""

from __future__ import annotations

from flask import current_app, jsonify, request

from app.extensions import db
from app.http import json_body
from app.identity import bp, service
from app.identity.auth import api_auth, api_user, bearer_token
from app.identity.models import User
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
    user = service.register_trainee(json_body(), today=today_local())
    db.session.commit()
    return jsonify({"id": user.id}), 201


@bp.post("/api/v1/auth/token")
def api_token():
    body = json_body()
    user = service.authenticate(
        body.get("login"), body.get("password"), address=request.remote_addr or "unknown"
    )
    token, row = service.issue_token(
        user, ttl_s=current_app.config["TOKEN_TTL_S"], label="api sign-in"
    )
    db.session.commit()
    return jsonify({"token": token, "expires_at": row.expires_at.isoformat()})


@bp.delete("/api/v1/auth/token")
@api_auth()
def api_revoke_token():
    """Sign the calling token out."""
    token = bearer_token()
    if token:
        service.revoke_token(token)
        db.session.commit()
    return "", 204


@bp.get("/api/v1/me")
@api_auth()
def api_me():
    return jsonify(user_json(api_user()))
