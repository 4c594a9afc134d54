"""JSON API: the auditors' queue and decisions, face images for auditors, appeals, the e-archive."""

from __future__ import annotations

from flask import current_app, jsonify, redirect, request

from app.extensions import db
from app.http import int_arg, json_body
from app.identity.auth import api_auth, api_reauthenticated, current_api_user
from app.identity.models import STAFF_ROLES, Role, User
from app.media.service import object_url
from app.subsidy import bp, desk, service
from app.verification.models import Evidence


def image_redirect(evidence: Evidence, viewer: User):
    """Log the viewer's look at one face image and send them to a short-lived signed link,
    which no cache keeps."""
    if evidence.key is None:  # the desk refuses purged images before they get here
        raise RuntimeError(f"evidence {evidence.id} was purged")
    desk.log_view(evidence, viewer)
    db.session.commit()
    url = object_url(evidence.key, current_app.config["EVIDENCE_URL_TTL_S"], viewer_id=viewer.id)
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/v1/audit/reviews")
@api_auth(*STAFF_ROLES)
def api_reviews():
    limit = int_arg("limit", 200, low=1, high=1000)
    offset = int_arg("offset", 0, low=0, high=10_000_000)
    if service.refresh_stale():
        db.session.commit()
    items = service.review_queue(limit, offset)
    return jsonify({"items": [service.queue_item_json(item) for item in items]})


@bp.get("/api/v1/audit/checks/<int:check_id>/image")
@api_auth(*STAFF_ROLES)
def api_check_image(check_id: int):
    viewer = current_api_user()
    return image_redirect(desk.check_image(check_id, viewer), viewer)


@bp.post("/api/v1/audit/enrollments/<int:enrollment_id>/decision")
@api_auth(*STAFF_ROLES)
@api_reauthenticated
def api_decide(enrollment_id: int):
    body = json_body()
    decision = service.decide(
        enrollment_id,
        body.get("decision"),
        body.get("reason"),
        auditor=current_api_user(),
    )
    db.session.commit()
    state = service.subsidy_of(service.enrollment_by_id(enrollment_id))
    return jsonify(
        {
            "decision": {"id": decision.id, "action": decision.action.value},
            "subsidy": service.subsidy_json(state),
            "certificate_no": state.certificate_no,
        }
    )


@bp.post("/api/v1/audit/checks/<int:check_id>/clear")
@api_auth(*STAFF_ROLES)
@api_reauthenticated
def api_clear_check(check_id: int):
    decision = service.clear_check(check_id, json_body().get("reason"), auditor=current_api_user())
    db.session.commit()
    state = service.subsidy_of(service.enrollment_by_id(decision.enrollment_id))
    return jsonify(
        {
            "decision": {"id": decision.id, "action": decision.action.value},
            "enrollment_id": decision.enrollment_id,
            "subsidy": service.subsidy_json(state),
            "certificate_no": state.certificate_no,
        }
    )


@bp.post("/api/v1/enrollments/<int:enrollment_id>/appeal")
@api_auth(Role.TRAINEE)
def api_appeal(enrollment_id: int):
    appeal = service.appeal(current_api_user(), enrollment_id, json_body().get("message"))
    db.session.commit()
    return jsonify({"id": appeal.id, "enrollment_id": enrollment_id}), 201


@bp.get("/api/v1/me/archive")
@api_auth(Role.TRAINEE)
def api_archive():
    user = current_api_user()
    response = jsonify(
        {
            "trainee": {"name": user.name, "id_number": user.id_number_masked},
            "items": service.archive(user),
        }
    )
    if request.args.get("download") == "1":
        response.headers["Content-Disposition"] = 'attachment; filename="veriskill-archive.json"'
    return response
