"""JSON API for trainees: enrol in a course (studying it is app.study's)."""

from __future__ import annotations

from flask import jsonify
from flask_babel import lazy_gettext as _l

from app.extensions import db
from app.identity.auth import api_auth, current_api_user
from app.identity.models import Role
from app.learning import bp, service


@bp.post("/api/v1/courses/<int:course_id>/enrollments")
@api_auth(Role.TRAINEE)
def api_enroll(course_id: int):
    enrollment, created = service.enroll(current_api_user(), course_id)
    db.session.commit()
    if not created:
        message = str(_l("You are already enrolled in this course."))
        error = {"code": "already_enrolled", "message": message, "id": enrollment.id}
        return jsonify({"error": error, "id": enrollment.id}), 409
    return jsonify({"id": enrollment.id}), 201
