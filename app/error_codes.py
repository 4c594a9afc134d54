"""Every error code the service answers with: its HTTP status and what it means, in one table.

Handlers raise AppError kinds (app/errors.py) with these codes; the OpenAPI document builds
its `ErrorCode` enum, each operation's error responses and the page's table of codes from this
table (app/openapi.py); tests/test_error_codes.py reads the source and fails on a code raised
anywhere that is missing here, or registered under another status than the one it is raised
with. Messages for people stay where the error is raised (they depend on the case); the meaning
here is the stable English sentence integrators read in the API document.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Scope(enum.Enum):
    """Where a code can reach a client, which decides where the API document names it."""

    OPERATIONS = "operations"  # named by each operation of the JSON API that can answer it
    ANY = "any"  # any address may answer it (405, 500): named once, in the document's overview
    PAGES = "pages"  # only pages, forms and commands: never an answer of the JSON API


@dataclass(frozen=True)
class ErrorCode:
    status: int
    meaning: str
    scope: Scope = Scope.OPERATIONS
    retry_after: bool = False  # the answer carries `Retry-After`


ERRORS: dict[str, ErrorCode] = {
    # Requests the server cannot read
    "bad_request": ErrorCode(400, "The request could not be understood.", Scope.PAGES),
    "malformed_json": ErrorCode(400, "The body is not a JSON object."),
    "too_deep": ErrorCode(400, "The JSON nests deeper than 32 levels."),
    "csrf_failed": ErrorCode(
        400, "A signed-in browser session sent no valid `X-CSRFToken` header."
    ),
    "length_required": ErrorCode(400, "No `Content-Length`."),
    "bad_content_range": ErrorCode(
        400, "`Content-Range` is not `bytes <first>-<last>/<total>`, or the range does not fit."
    ),
    "length_mismatch": ErrorCode(400, "The body length differs from the size in `Content-Range`."),
    "incomplete_chunk": ErrorCode(400, "The connection broke mid-chunk; send the chunk again."),
    # Who is calling
    "unauthorized": ErrorCode(401, "No credentials: send a bearer token or sign in."),
    "invalid_token": ErrorCode(401, "The bearer token is wrong, expired or revoked."),
    "bad_credentials": ErrorCode(401, "Wrong login or password."),
    "captcha_required": ErrorCode(
        401,
        "Too many failed sign-ins for this login: answer the captcha (`captcha_id`, "
        "`captcha_image`) with the password. The account itself is never locked.",
    ),
    "reauth_required": ErrorCode(
        401,
        "The caller last authenticated more than `REAUTH_S` ago (a token's issue counts): "
        "send the request again with `password`.",
    ),
    # What the caller may do
    "forbidden": ErrorCode(403, "The caller's role may not do this."),
    "out_of_scope": ErrorCode(
        403, "A district officer asked for another district's data: they see their own only."
    ),
    "not_enrolled": ErrorCode(403, "Enrol in the course first."),
    "face_not_enrolled": ErrorCode(403, "Enrol a reference face before studying."),
    "consent_required": ErrorCode(
        403,
        "No face is processed without the trainee's consent to face processing at the current "
        "version of its text (`GET /api/v1/me/consent`).",
    ),
    "identity_under_review": ErrorCode(403, "An auditor is reviewing the trainee's identity."),
    "identity_duplicate": ErrorCode(403, "Staff found the trainee already has another account."),
    "password_change_required": ErrorCode(
        403,
        "Staff set a temporary password: only `POST /api/v1/me/password`, `GET /api/v1/me` "
        "and signing out work until a new one is chosen.",
    ),
    # What does not exist
    "not_found": ErrorCode(404, "No such resource, or it belongs to another platform."),
    "occupation_not_found": ErrorCode(
        404, "No occupation or group has the code given in `occupation`."
    ),
    "notification_not_found": ErrorCode(404, "No notification of the caller has this id."),
    "certificate_not_found": ErrorCode(404, "No certificate has this number."),
    "enrollment_not_found": ErrorCode(
        404, "No enrolment has this id (issuing a certificate).", Scope.PAGES
    ),
    "no_image": ErrorCode(404, "The check has no retained image."),
    "purged": ErrorCode(404, "The image was purged at the end of its retention period."),
    "sms_disabled": ErrorCode(
        404, "Text messages are turned off on this server (`SMS_BACKEND` empty)."
    ),
    "method_not_allowed": ErrorCode(
        405,
        "This address does not accept that method; `Allow` names those it does.",
        scope=Scope.ANY,
    ),
    # What conflicts with the record
    "conflict": ErrorCode(409, "This conflicts with what is already recorded.", Scope.PAGES),
    "already_registered": ErrorCode(409, "This ID number already has an account."),
    "username_taken": ErrorCode(409, "Another account has this username.", Scope.PAGES),
    "platform_exists": ErrorCode(409, "A platform with this name exists.", Scope.PAGES),
    "course_locked": ErrorCode(409, "The course is in review, published or withdrawn."),
    "no_lessons": ErrorCode(409, "The course has no lessons."),
    "lessons_not_ready": ErrorCode(409, "Some lessons have no processed video (see `lesson_ids`)."),
    "not_in_review": ErrorCode(
        409, "Only a course in review can be published or rejected.", Scope.PAGES
    ),
    "not_published": ErrorCode(409, "Only a published course can be withdrawn.", Scope.PAGES),
    "wrong_offset": ErrorCode(
        409, "The chunk does not start where the upload stands; resume at `expected_offset`."
    ),
    "total_changed": ErrorCode(
        409, "The total size differs from the upload in progress (`expected_total`)."
    ),
    "processing": ErrorCode(409, "The video is queued or being processed."),
    "already_enrolled": ErrorCode(409, "Already enrolled; `id` names the enrolment."),
    "lesson_not_ready": ErrorCode(409, "The lesson's video is not ready."),
    "reference_gone": ErrorCode(
        409, "The photo behind a reference face is gone (re-encoding).", Scope.PAGES
    ),
    "check_closed": ErrorCode(409, "The face check already passed, failed or expired (`result`)."),
    "check_judging": ErrorCode(
        409,
        "An earlier answer to the check is still being judged; poll `GET /api/v1/checks/{id}`.",
    ),
    "session_conflict": ErrorCode(
        409, "The lesson was opened on another device at the same moment."
    ),
    "session_ended": ErrorCode(
        409, "The study session ended, e.g. the lesson was opened elsewhere (`end_reason`)."
    ),
    "not_complete": ErrorCode(409, "The course is not complete on verified time."),
    "already_eligible": ErrorCode(409, "The enrolment is already eligible."),
    "already_rejected": ErrorCode(409, "The enrolment is already rejected."),
    "needs_another_auditor": ErrorCode(
        409, "The caller proposed this rejection; a second auditor must confirm it."
    ),
    "rejected": ErrorCode(409, "The enrolment was rejected; only the trainee's appeal reopens it."),
    "check_not_failed": ErrorCode(409, "Only a failed check can be cleared."),
    "already_cleared": ErrorCode(409, "The check is already cleared."),
    "not_rejected": ErrorCode(409, "Only a rejected subsidy can be appealed."),
    "already_appealed": ErrorCode(409, "The appeal is already with the auditors."),
    # What the body holds
    "too_large": ErrorCode(413, "The body, or the announced video, exceeds the limit."),
    "image_too_large": ErrorCode(413, "The photo is too large, in bytes or in pixels."),
    "unsupported_media_type": ErrorCode(415, "Send the body as `application/json`."),
    "not_a_video": ErrorCode(415, "The first bytes are not a known video container."),
    "invalid": ErrorCode(422, "Some fields are not valid; see `fields`."),
    "invalid_text": ErrorCode(
        422,
        "Some text (in the path, the query, a form field or the JSON body; see `fields`) holds "
        "control characters other than tab and line breaks, unpaired surrogates, direction "
        "overrides, or only invisible characters.",
    ),
    "invalid_label": ErrorCode(422, "A token's label must have 1 to 100 characters.", Scope.PAGES),
    "invalid_code": ErrorCode(
        422,
        "The SMS code is missing, wrong, expired, already used or was tried too often (one "
        "answer for all); ask for a new one. `fields` names the field.",
    ),
    "unknown_purpose": ErrorCode(422, "Consent is asked only for `face_verification`."),
    "consent_version_outdated": ErrorCode(422, "The version is not that of the text in force."),
    "empty_upload": ErrorCode(422, "The upload has no bytes."),
    "not_an_image": ErrorCode(
        422, "The upload is not a usable image (JPEG or PNG; WebP for faces)."
    ),
    "no_face": ErrorCode(422, "No face in the photo."),
    "multiple_faces": ErrorCode(422, "More than one face in the photo."),
    "face_too_small": ErrorCode(422, "The face is too small: come closer."),
    "too_blurry": ErrorCode(422, "The photo is blurred."),
    "too_dark": ErrorCode(422, "The photo is too dark."),
    "too_bright": ErrorCode(422, "The photo is too bright."),
    "invalid_captions": ErrorCode(422, "The file is not SRT or WebVTT captions, or holds no cues."),
    # Too much, too often
    "locked_out": ErrorCode(
        429,
        "Too many failed sign-ins from this address; wait `retry_after_s` (`Retry-After`).",
        retry_after=True,
    ),
    "too_many_registrations": ErrorCode(
        429,
        "Too many registrations from this address; wait `retry_after_s` (`Retry-After`).",
        retry_after=True,
    ),
    "too_many_requests": ErrorCode(
        429,
        "Too many codes asked for from this address or for this phone; wait `retry_after_s` "
        "(`Retry-After`).",
        retry_after=True,
    ),
    # The server's side
    "internal": ErrorCode(
        500, "Something went wrong on the server; it has been logged.", scope=Scope.ANY
    ),
    "sms_unavailable": ErrorCode(
        503,
        "Text messages cannot be sent just now (SMS off or the provider failed); try again later.",
        retry_after=True,
    ),
    "overloaded": ErrorCode(
        503,
        "The server is shedding heartbeats it cannot take in time; nothing was recorded. Send "
        "the same heartbeat again after `Retry-After` seconds.",
        retry_after=True,
    ),
    "storage_unavailable": ErrorCode(
        503, "Storage cannot be reached just now; try again later.", retry_after=True
    ),
    "storage_full": ErrorCode(507, "Storage is full just now; try again later."),
}


def status_of(code: str) -> int:
    """The HTTP status a registered code is answered with; KeyError for an unregistered one."""
    return ERRORS[code].status


def api_codes() -> list[str]:
    """The codes a client of the JSON API can receive, in the table's order."""
    return [code for code, entry in ERRORS.items() if entry.scope is not Scope.PAGES]
