"""JSON API for trainees: enrol, open a study session, send heartbeats, read progress."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from flask_babel import lazy_gettext as _l

from app.courses import playback
from app.extensions import db
from app.http import json_body
from app.identity.auth import api_auth, api_user
from app.identity.models import Role
from app.learning import bp, service
from app.learning.models import Enrollment
from app.subsidy import service as subsidy
from app.verification import service as verification


def enrollment_json(enrollment: Enrollment) -> dict[str, Any]:
    summary = service.summarize(enrollment)
    state = subsidy.subsidy_of(enrollment)
    return {
        "id": enrollment.id,
        "course_id": enrollment.course_id,
        "course_title": enrollment.course.title,
        "lessons": [
            {
                key: item[key]
                for key in (
                    "id",
                    "title",
                    "duration_s",
                    "credited_s",
                    "verified_s",
                    "coverage",
                    "completed",
                    "resume_s",
                    "needed_s",
                )
            }
            for item in summary["lessons"]
        ],
        "credited_s": summary["credited_s"],
        "verified_s": summary["verified_s"],
        "required_s": summary["required_s"],
        "completed": summary["completed"],
        "subsidy": subsidy.subsidy_json(state),
        "certificate_no": state.certificate_no,
    }


@bp.post("/api/v1/courses/<int:course_id>/enrollments")
@api_auth(Role.TRAINEE)
def api_enroll(course_id: int):
    enrollment, created = service.enroll(api_user(), course_id)
    db.session.commit()
    if not created:
        message = str(_l("You are already enrolled in this course."))
        error = {"code": "already_enrolled", "message": message, "id": enrollment.id}
        return jsonify({"error": error, "id": enrollment.id}), 409
    return jsonify({"id": enrollment.id}), 201


@bp.get("/api/v1/me/enrollments")
@api_auth(Role.TRAINEE)
def api_my_enrollments():
    items = [enrollment_json(e) for e in service.enrollments_of(api_user())]
    return jsonify({"items": items})


@bp.get("/api/v1/enrollments/<int:enrollment_id>")
@api_auth()
def api_enrollment(enrollment_id: int):
    return jsonify(enrollment_json(service.enrollment_for(api_user(), enrollment_id)))


@bp.post("/api/v1/lessons/<int:lesson_id>/sessions")
@api_auth(Role.TRAINEE)
def api_start_session(lesson_id: int):
    session = service.start_session(
        api_user(),
        lesson_id,
        user_agent=request.headers.get("User-Agent", ""),
        address=request.remote_addr or "",
    )
    db.session.commit()
    progress = service.progress_for(
        db.session.get(Enrollment, session.enrollment_id), session.lesson
    )
    return jsonify(
        {
            "id": session.id,
            "check": verification.check_json(verification.latest_check(session)),
            "heartbeat_s": current_app.config["HEARTBEAT_S"],
            "resume_s": min(progress.position_s, progress.furthest_s),
            "furthest_s": progress.furthest_s,
            "playlist_url": playback.playlist_url(session.lesson),
        }
    ), 201


@bp.post("/api/v1/sessions/<int:session_id>/heartbeats")
@api_auth(Role.TRAINEE)
def api_heartbeat(session_id: int):
    outcome = service.heartbeat(api_user(), session_id, json_body())
    if outcome.course_completed:
        subsidy.on_completed(outcome.enrollment)
    db.session.commit()
    progress = outcome.progress
    return jsonify(
        {
            "credited_s": outcome.credited_s,
            "reason": outcome.reason,
            "lesson_credited_s": round(progress.credited_s, 3),
            "lesson_verified_s": progress.verified_s,
            "furthest_s": round(progress.furthest_s, 3),
            "coverage": round(progress.coverage, 4),
            "completed": outcome.completed,
            "check": verification.check_json(outcome.check),
        }
    )
