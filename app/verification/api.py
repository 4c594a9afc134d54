"""JSON API: enrol a reference face, answer face checks and follow their judging."""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask_babel import lazy_gettext as _l

from app.errors import Invalid
from app.extensions import db
from app.identity.auth import api_auth, api_user
from app.identity.models import Role
from app.jobs import service as jobs
from app.learning import service as learning
from app.learning.models import StudySession
from app.verification import bp, service
from app.verification.judging import KIND as VERIFY_CHECK

MAX_FRAMES = 12


def _images(single: str, many: str) -> list[bytes]:
    """The uploaded image(s): one in `single`, or a burst in repeated `many` fields."""
    request.max_content_length = current_app.config["FACE_MAX_BYTES"] * (MAX_FRAMES + 1)
    files = request.files.getlist(many) or request.files.getlist(single)
    if len(files) > MAX_FRAMES:
        raise Invalid(fields={many: _l("At most %(n)d frames.", n=MAX_FRAMES)})
    images = []
    for file in files:
        images.append(file.read())
        file.close()  # large uploads are spooled to a temporary file: release it now
    return images


@bp.put("/api/v1/me/face")
@api_auth(Role.TRAINEE)
def api_enrol_face():
    images = _images("image", "image")
    if len(images) != 1:
        raise Invalid(fields={"image": _l("Send one photo as multipart field 'image'.")})
    if not images[0]:
        raise Invalid(_l("The upload is empty."), code="not_an_image")
    enrolment = service.enrol_face(api_user(), images[0])
    db.session.commit()
    reference = enrolment.reference
    return jsonify(
        {
            "status": reference.status.value,
            "quality": {
                "face_px": reference.face_px,
                "blur": reference.blur,
                "brightness": reference.brightness,
            },
            "under_review": bool(enrolment.flags),
        }
    )


@bp.get("/api/v1/me/face")
@api_auth(Role.TRAINEE)
def api_face_status():
    return jsonify(service.face_status(api_user()))


@bp.post("/api/v1/checks/<int:check_id>")
@api_auth(Role.TRAINEE)
def api_answer_check(check_id: int):
    user = api_user()
    check = service.check_for(user, check_id)
    session = db.session.get(StudySession, check.session_id)
    frames = [frame for frame in _images("image", "frames") if frame]
    learning.record_void(session, service.expire_if_due(session, check))
    if check.status.value != "pending":
        db.session.commit()  # keep the expiry
    if service.checks_in_worker():
        # The face model runs in a worker; the player polls GET until the verdict is in.
        answer = service.queue_answer(user, check, frames)
        job = jobs.enqueue(VERIFY_CHECK, answer.id)
        db.session.commit()
        jobs.dispatch(job.id)
        return jsonify(service.check_state(check)), 202
    verdict = service.judge(user, check, frames, session=session)
    learning.record_void(session, verdict.voided_s)
    db.session.commit()
    return jsonify(
        {
            "passed": verdict.passed,
            "code": verdict.code,
            "score": verdict.score,
            "retry": verdict.retry,
            "voided_s": round(verdict.voided_s, 3),
        }
    )


@bp.get("/api/v1/checks/<int:check_id>")
@api_auth(Role.TRAINEE)
def api_check_state(check_id: int):
    return jsonify(service.check_state(service.check_for(api_user(), check_id)))
