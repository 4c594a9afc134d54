"""JSON endpoints for accounts and tokens."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify

from app.audit import service as audit
from app.bureau import service as bureau
from app.bureau.models import District
from app.errors import AppError
from app.extensions import db
from app.http import json_body
from app.identity import bp, service
from app.identity.auth import address, api_auth, bearer_token, current_api_user
from app.identity.codes import CODE_SENT, PASSWORD_RESET_DONE, RESET_CODE_SENT, InvalidCode
from app.identity.models import User
from app.identity.sms import SmsDisabled
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
        "district": district_json(bureau.district_of(user)),
    }


def district_json(district: District | None) -> dict | None:
    if district is None:
        return None
    return {"code": district.code, "name": bureau.district_name(district)}


@bp.post("/api/v1/auth/register")
def api_register():
    """Register a trainee; with SMS on, `phone_code` must be the code texted to the phone."""
    service.register_allowed(address())
    try:
        user = service.register_trainee(
            json_body(), today=today_local(), verify_phone=service.sms_enabled()
        )
    except InvalidCode:
        db.session.commit()  # the try on the code counts; nothing else was written
        raise
    db.session.commit()
    return jsonify({"id": user.id}), 201


def code_sent_json(message: Any) -> dict[str, Any]:
    config = current_app.config
    return {
        "message": str(message),
        "expires_in_s": config["SMS_CODE_TTL_S"],
        "resend_after_s": config["SMS_CODE_RESEND_S"],
    }


@bp.post("/api/v1/auth/phone-code")
def api_phone_code():
    """Text a registration code to `phone` (202); needed by /api/v1/auth/register while SMS
    is on."""
    body = json_body()
    if not service.sms_enabled():
        raise SmsDisabled()
    service.request_phone_code(body.get("phone"), address=address())
    db.session.commit()
    return jsonify(code_sent_json(CODE_SENT)), 202


@bp.post("/api/v1/auth/password-reset")
def api_password_reset():
    """Text a reset code to the account's phone. The answer is the same whether or not the
    account exists or has a phone."""
    body = json_body()
    if not service.sms_enabled():
        raise SmsDisabled()
    service.request_password_reset(body.get("login"), address=address())
    db.session.commit()
    return jsonify(code_sent_json(RESET_CODE_SENT)), 202


@bp.post("/api/v1/auth/password-reset/confirm")
def api_password_reset_confirm():
    """Set a new password with the texted code; every session and token of the account ends."""
    body = json_body()
    try:
        service.reset_password(body.get("login"), body.get("code"), body.get("password"))
    except InvalidCode:
        db.session.commit()  # the try on the code counts
        raise
    db.session.commit()
    return jsonify({"message": str(PASSWORD_RESET_DONE)})


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
            current_api_user(),
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
        start_session(current_api_user())
    return "", 204


@bp.get("/api/v1/me")
@api_auth()
def api_me():
    return jsonify(user_json(current_api_user()))
