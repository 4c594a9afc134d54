"""Pages: enrol a reference face with the camera or a photo."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.consent import service as consent
from app.identity.auth import role_required
from app.identity.models import Role
from app.verification import bp, service
from media_pipeline.limits import MAX_IMAGE_BYTES, MIB

# What each refusal code means for the person holding the phone.
FACE_MESSAGES = {
    "no_face": _l("No face was found. Face the camera in good light."),
    "multiple_faces": _l("More than one face is in the picture. Only you should be in it."),
    "face_too_small": _l("Your face is too small. Come closer to the camera."),
    "too_blurry": _l("The photo is blurred. Hold still and try again."),
    "too_dark": _l("The photo is too dark. Find more light."),
    "too_bright": _l("The photo is too bright. Move away from strong light."),
    "not_an_image": _l("This file is not a photo (JPEG, PNG or WebP)."),
    "image_too_large": _l(
        "This photo is too large (at most %(mb)d MB).", mb=MAX_IMAGE_BYTES // MIB
    ),
    "mismatch": _l("This does not look like the person enrolled on this account."),
    "replay": _l("This picture was used before. Take a new one."),
    "liveness_failed": _l("We could not see the movement asked for. Try again."),
    "expired": _l("The time to answer ran out."),
    "passed": _l("Verified. You can continue."),
    "checking": _l("Checking your photos, please wait…"),
    "get_ready": _l("Get ready: the camera takes photos in %(n)s s.", n="{n}"),
    "capturing": _l("Taking photos, hold on…"),
    "tries_left": _l("You can try %(n)s more time(s).", n="{n}"),
    "failed_final": _l(
        "The check did not pass. The study time since your last check was not counted; "
        "an auditor will look at the photos. You can go on studying."
    ),
    "continue": _l("Continue"),
    "closing": _l("Confirm this sitting: one more photo and the time you studied counts."),
    "session_ended": _l("This lesson was opened on another device; this page stopped."),
    "not_judged": _l(
        "Your photos could not be checked this time. Please take them again; "
        "the time to answer starts over."
    ),
    "no_camera": _l("The camera could not be opened. Allow camera access and reload the page."),
}


def face_messages() -> dict[str, str]:
    return {code: str(text) for code, text in FACE_MESSAGES.items()}


@bp.get("/me/face")
@role_required(Role.TRAINEE)
def enrol_page():
    if not consent.has_consent(current_user.id):
        # No face is taken without a recorded consent: the text first.
        flash(_("Please read and accept the consent to face processing first."), "info")
        return redirect(url_for("consent.consent_page", next=url_for("verification.enrol_page")))
    return render_template(
        "verification/face.html",
        status=service.face_status(current_user),
        messages=face_messages(),
    )


@bp.app_context_processor
def face_score_text() -> dict:
    return {"face_score": service.describe_score}
