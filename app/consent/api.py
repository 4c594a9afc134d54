"""JSON API: read, give and withdraw consent to face processing."""

from __future__ import annotations

from flask import jsonify

from app.consent import bp, service
from app.extensions import db
from app.http import json_body
from app.identity.auth import api_auth, current_api_user
from app.identity.models import Role


@bp.get("/api/v1/me/consent")
@api_auth(Role.TRAINEE)
def api_consent():
    return jsonify(service.status_json(current_api_user()))


@bp.post("/api/v1/me/consent")
@api_auth(Role.TRAINEE)
def api_give_consent():
    body = json_body()
    given = service.give(current_api_user(), body.get("purpose"), body.get("version"))
    db.session.commit()
    consent = given.consent
    return jsonify(
        {
            "purpose": consent.purpose,
            "version": consent.version,
            "given_at": consent.given_at.isoformat(),
        }
    ), (201 if given.created else 200)


@bp.delete("/api/v1/me/consent/<purpose>")
@api_auth(Role.TRAINEE)
def api_withdraw_consent(purpose: str):
    result = service.withdraw(current_api_user(), purpose)
    db.session.commit()
    return jsonify(service.withdrawn_json(result))
