"""JSON API for a trainee studying: progress, study sessions, heartbeats, face checks."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request

from app.courses import playback
from app.extensions import db
from app.http import json_body, uploaded_files
from app.identity.auth import api_auth, api_user
from app.identity.models import Role
from app.jobs import service as jobs
from app.learning import service as learning
from app.learning.models import Enrollment
from app.study import bp, workflow
from app.study.jobs import VERIFY_CHECK
from app.subsidy import service as subsidy
from app.verification import service as verification
from media_pipeline.limits import MAX_BURST_FRAMES, MAX_IMAGE_BYTES

LESSON_FIELDS = (
    "id",
    "title",
    "duration_s",
    "credited_s",
    "verified_s",
    "pending_s",
    "coverage",
    "completed",
    "resume_s",
    "needed_s",
)


def enrollment_json(enrollment: Enrollment) -> dict[str, Any]:
    summary = learning.summarize(enrollment)
    state = subsidy.subsidy_of(enrollment)
    return {
        "id": enrollment.id,
        "course_id": enrollment.course_id,
        "course_title": enrollment.course.title,
        "lessons": [{key: item[key] for key in LESSON_FIELDS} for item in summary["lessons"]],
        "credited_s": summary["credited_s"],
        "verified_s": summary["verified_s"],
        "pending_s": summary["pending_s"],
        "required_s": summary["required_s"],
        "completed": summary["completed"],
        "subsidy": subsidy.subsidy_json(state),
        "certificate_no": state.certificate_no,
    }


@bp.get("/api/v1/me/enrollments")
@api_auth(Role.TRAINEE)
def api_my_enrollments():
    items = [enrollment_json(e) for e in learning.enrollments_of(api_user())]
    return jsonify({"items": items})


@bp.get("/api/v1/enrollments/<int:enrollment_id>")
@api_auth()
def api_enrollment(enrollment_id: int):
    return jsonify(enrollment_json(learning.enrollment_for(api_user(), enrollment_id)))


@bp.post("/api/v1/lessons/<int:lesson_id>/sessions")
@api_auth(Role.TRAINEE)
def api_start_session(lesson_id: int):
    started = workflow.start_session(
        api_user(),
        lesson_id,
        user_agent=request.headers.get("User-Agent", ""),
        address=request.remote_addr or "",
    )
    db.session.commit()
    session, progress = started.session, started.progress
    return jsonify(
        {
            "id": session.id,
            "check": verification.check_json(started.check),
            "heartbeat_s": current_app.config["HEARTBEAT_S"],
            "resume_s": learning.resume_at(progress),
            "furthest_s": progress.furthest_s,
            "playlist_url": playback.playlist_url(session.lesson),
        }
    ), 201


@bp.post("/api/v1/sessions/<int:session_id>/heartbeats")
@api_auth(Role.TRAINEE)
def api_heartbeat(session_id: int):
    beat = workflow.heartbeat(api_user(), session_id, json_body())
    db.session.commit()
    outcome = beat.outcome
    progress = outcome.progress
    return jsonify(
        {
            "credited_s": outcome.credited_s,
            "reason": outcome.reason,
            "lesson_credited_s": round(progress.credited_s, 3),
            "lesson_verified_s": progress.verified_s,
            "lesson_pending_s": round(progress.pending_s, 3),
            "furthest_s": round(progress.furthest_s, 3),
            "coverage": round(progress.coverage, 4),
            "completed": outcome.completed,
            "check": verification.check_json(beat.check),
        }
    )


@bp.post("/api/v1/checks/<int:check_id>")
@api_auth(Role.TRAINEE)
def api_answer_check(check_id: int):
    user = api_user()
    frames = uploaded_files(
        "image",
        "frames",
        max_files=MAX_BURST_FRAMES,
        max_bytes=MAX_IMAGE_BYTES,
        too_large=verification.too_large(),
    )
    workflow.expire_check_if_due(user, check_id)
    db.session.commit()  # an expiry stands even though the late answer is refused
    answered = workflow.answer_check(user, check_id, [frame for frame in frames if frame])
    if answered.queued is not None:
        # The face model runs in a worker; the player polls GET until the verdict is in.
        job = jobs.enqueue(VERIFY_CHECK, answered.queued.id)
        db.session.commit()
        jobs.dispatch(job.id)
        return jsonify(verification.check_state(answered.check)), 202
    db.session.commit()
    verdict = answered.verdict
    return jsonify(
        {
            **verification.check_state(answered.check),
            "passed": verdict.passed,
            "code": verdict.code,
            "score": verdict.score,
            "retry": verdict.retry,
            "voided_s": round(answered.voided_s, 3),
        }
    )


@bp.get("/api/v1/checks/<int:check_id>")
@api_auth(Role.TRAINEE)
def api_check_state(check_id: int):
    return jsonify(verification.check_state(verification.check_for(api_user(), check_id)))
