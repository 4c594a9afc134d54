"""JSON API: enrol a reference face and read its status (checks are answered in app.study)."""

from __future__ import annotations

from flask import jsonify
from flask_babel import lazy_gettext as _l

from app.errors import Invalid
from app.extensions import db
from app.http import uploaded_files
from app.identity.auth import api_auth, current_api_user
from app.identity.models import Role
from app.verification import bp, service
from media_pipeline.limits import MAX_IMAGE_BYTES


@bp.put("/api/v1/me/face")
@api_auth(Role.TRAINEE)
def api_enrol_face():
    service.require_consent(current_api_user())  # before anything of the photo is read
    images = uploaded_files(
        "image", "image", max_files=1, max_bytes=MAX_IMAGE_BYTES, too_large=service.too_large()
    )
    if len(images) != 1:
        raise Invalid(fields={"image": _l("Send one photo as multipart field 'image'.")})
    if not images[0]:
        raise Invalid(_l("The upload is empty."), code="not_an_image")
    enrolment = service.enrol_face(current_api_user(), images[0])
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
    return jsonify(service.face_status(current_api_user()))
