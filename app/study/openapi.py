"""The study operations of the API document: progress, sessions, heartbeats, face checks."""

from __future__ import annotations

from app.identity.models import Role
from app.learning.rules import Reason
from app.learning.service import MAX_SEQ
from app.openapi.spec import (
    Endpoint,
    Schema,
    array,
    integer,
    json_request,
    json_response,
    nullable,
    obj,
    one_of,
    ref,
    string,
)
from app.verification.models import CheckKind, CheckStatus
from app.verification.openapi import SCORE
from media_pipeline.limits import BURST_SPAN_MS, MAX_BURST_FRAMES

SCHEMAS: dict[str, Schema] = {
    "LessonStudy": obj(
        {
            "id": integer("The lesson."),
            "title": string(),
            "duration_s": {"type": "number", "description": "The video's length."},
            "credited_s": {"type": "number", "description": "Study time credited so far."},
            "verified_s": {
                "type": "number",
                "description": "Credited time a passed face check confirmed: what completion "
                "and money count.",
            },
            "pending_s": {
                "type": "number",
                "description": "Credited time waiting for the session's next face check.",
            },
            "coverage": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "Share of the video watched at least once.",
            },
            "completed": {"type": "boolean"},
            "resume_s": {"type": "number", "description": "Where the player should resume."},
            "needed_s": {"type": "number", "description": "Credited time still needed."},
        }
    ),
    "Enrollment": obj(
        {
            "id": integer(),
            "course_id": integer(),
            "course_title": string(),
            "lessons": array(ref("LessonStudy"), "In order of position."),
            "credited_s": {"type": "number", "description": "Study time credited, all lessons."},
            "verified_s": {
                "type": "number",
                "description": "Credited time a passed face check confirmed, all lessons.",
            },
            "pending_s": {
                "type": "number",
                "description": "Credited time waiting for a face check, all lessons.",
            },
            "required_s": {"type": "number", "description": "Confirmed time completion needs."},
            "completed": {"type": "boolean"},
            "subsidy": ref("Subsidy"),
            "certificate_no": nullable(
                string("The valid certificate's number once one is issued (see Certificates).")
            ),
        }
    ),
    "EnrollmentList": obj({"items": array(ref("Enrollment"), "Newest first.")}),
    "FaceCheck": nullable(
        obj(
            {
                "id": integer("Answer at `POST /api/v1/checks/{id}`."),
                "kind": string(
                    "`sign_in` opens every session; `random` comes unannounced; `closing` "
                    "confirms the time since the last check when a lesson is done or its "
                    "video ended.",
                    enum=[kind.value for kind in CheckKind],
                ),
                "challenge": nullable(
                    string(
                        "With liveness on: the movement to make during the burst.",
                        enum=["blink", "turn_left", "turn_right"],
                    )
                ),
                "attempts": integer("Answers judged so far."),
                "max_attempts": integer("Answers it takes at most; the last one counts."),
                "expires_at": string(
                    "Answer before this; after it the check fails as `expired`.", format="date-time"
                ),
            },
            description="A face check waiting for an answer; null when there is none. While "
            "one waits, no study time is credited.",
        )
    ),
    "CheckAnswer": obj(
        {},
        {
            "image": string("One photo.", contentMediaType="image/*"),
            "frames": array(
                string(contentMediaType="image/*"),
                f"Or a burst of up to {MAX_BURST_FRAMES} frames over about "
                f"{BURST_SPAN_MS // 1000} s (repeat the field).",
            ),
        },
        closed=False,
    ),
    "CheckState": obj(
        {
            "id": integer("The check."),
            "kind": string(enum=[kind.value for kind in CheckKind]),
            "challenge": nullable(string(enum=["blink", "turn_left", "turn_right"])),
            "expires_at": string("The answer's deadline.", format="date-time"),
            "attempts": integer("Answers judged so far."),
            "max_attempts": integer("Answers the check takes at most; the last one counts."),
            "status": string(
                "`pending` (waiting for an answer, or another one after `retry`), `judging` (a "
                "worker has the answer: poll again in about a second), `passed`, `failed`, or "
                "`cancelled` (its session ended unanswered: the time it would have confirmed "
                "lapsed).",
                enum=[
                    "pending",
                    "judging",
                    *(s.value for s in CheckStatus if s.value != "pending"),
                ],
            ),
            "passed": {"type": "boolean"},
            "code": nullable(
                string(
                    "Once judged: `passed`, or why not (`mismatch`, `no_face`, `multiple_faces`, "
                    "`replay`, `liveness_failed`, `expired`; `not_an_image` or `not_judged` "
                    "with `retry`). Null while pending or judging."
                )
            ),
            "score": nullable({"type": "number", "description": SCORE}),
            "threshold": nullable({"type": "number", "description": "The model's threshold."}),
            "model": nullable(string("The face model that judged the check.")),
            "retry": {
                "type": "boolean",
                "description": "Still `pending` after a `mismatch`, `no_face` or "
                "`liveness_failed` with tries left: answer again before the check expires.",
            },
            "voided_s": {
                "type": "number",
                "description": "Credited seconds the failure took back (0 otherwise).",
            },
        },
        description="A face check and where its judging stands, with the verdict of its latest "
        "answer once it is no longer `judging`.",
    ),
    "StudySession": obj(
        {
            "id": integer("Send heartbeats to this session."),
            "check": ref("FaceCheck"),
            "heartbeat_s": {"type": "number", "description": "Send a heartbeat this often."},
            "resume_s": {"type": "number", "description": "Where to start playing."},
            "furthest_s": {"type": "number", "description": "The furthest point reached."},
            "playlist_url": string("Signed HLS master playlist, short-lived.", format="uri"),
        }
    ),
    "Heartbeat": obj(
        {
            "position_s": {
                "type": "number",
                "minimum": 0,
                "description": "The player's position, 0 to the lesson's length (+2 s).",
            }
        },
        {
            "hidden": {"type": "boolean", "default": False, "description": "The page is hidden."},
            "playing": {"type": "boolean", "default": True, "description": "Not paused."},
            "seq": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_SEQ,
                "description": "One more for each heartbeat of the session: a heartbeat whose "
                "`seq` is not newer than one already judged (a retry, a duplicate, one "
                "overtaken) is answered with reason `repeated` and changes nothing. Without it "
                "a duplicate still earns nothing.",
            },
        },
        closed=False,
    ),
    "HeartbeatResult": obj(
        {
            "credited_s": {"type": "number", "description": "Seconds this heartbeat earned."},
            "reason": nullable(
                one_of(Reason, "Why it earned less than the time since the previous one.")
            ),
            "lesson_credited_s": {"type": "number"},
            "lesson_verified_s": {"type": "number", "description": "Confirmed by a face check."},
            "lesson_pending_s": {"type": "number", "description": "Waiting for a face check."},
            "furthest_s": {"type": "number"},
            "coverage": {"type": "number", "minimum": 0, "maximum": 1},
            "completed": {"type": "boolean", "description": "The lesson is complete."},
            "check": ref("FaceCheck"),
        }
    ),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "get",
        "/api/v1/me/enrollments",
        "Study",
        "The caller's enrolments with progress",
        roles=(Role.TRAINEE,),
        responses={200: json_response("EnrollmentList", "Every enrolment of the trainee.")},
    ),
    Endpoint(
        "get",
        "/api/v1/enrollments/{enrollment_id}",
        "Study",
        "One enrolment with progress per lesson",
        "Trainees see their own enrolments; auditors and admins every one.",
        roles=(),
        responses={200: json_response("Enrollment", "The enrolment.")},
    ),
    Endpoint(
        "post",
        "/api/v1/lessons/{lesson_id}/sessions",
        "Study",
        "Start studying a lesson",
        "Opens a study session on a ready lesson of an enrolled course. Any other open "
        "session of the trainee ends: one device at a time.",
        roles=(Role.TRAINEE,),
        responses={201: json_response("StudySession", "The session, and where to resume.")},
        errors=(
            "not_enrolled",
            "lesson_not_ready",
            "face_not_enrolled",
            "consent_required",
            "identity_under_review",
            "identity_duplicate",
            "session_conflict",
        ),
        storage=True,
    ),
    Endpoint(
        "post",
        "/api/v1/sessions/{session_id}/heartbeats",
        "Study",
        "Report the player's position",
        "Send every `heartbeat_s` seconds while the lesson is open. The server credits study "
        "time by its own clock and record; the client's account of time is never taken. A lost "
        "heartbeat costs the time it covered and nothing more. Credited time waits for the "
        "next face check (`lesson_pending_s`) and counts once it passes (`lesson_verified_s`); "
        "when the lesson is done, a `closing` check is asked.",
        roles=(Role.TRAINEE,),
        body=json_request(
            "Heartbeat", {"position_s": 42.5, "hidden": False, "playing": True, "seq": 17}
        ),
        responses={200: json_response("HeartbeatResult", "What this heartbeat earned.")},
        errors=("invalid", "session_ended", "overloaded"),
    ),
    Endpoint(
        "post",
        "/api/v1/checks/{check_id}",
        "Faces",
        "Answer a face check",
        "One photo, or a burst of frames judged on its best frames. A check that fails voids "
        "the study time credited since the last passed check; a `mismatch`, `no_face` or "
        "`liveness_failed` may be tried again while the check is open and tries are left "
        "(`retry`, `attempts`, `max_attempts`): the last answer counts. Where workers judge checks "
        "(`CHECKS_IN_WORKER`, production), the answer is stored and queued: 202 with status "
        "`judging`; poll `GET /api/v1/checks/{check_id}` about once a second for the verdict. "
        "An answer received in time is judged even if the window closes while it waits.",
        roles=(Role.TRAINEE,),
        body={"required": True, "content": {"multipart/form-data": {"schema": ref("CheckAnswer")}}},
        responses={
            200: json_response("CheckState", "The verdict, judged in the request."),
            202: json_response("CheckState", "Queued for a worker: status `judging`."),
        },
        errors=(
            "invalid",
            "not_an_image",
            "image_too_large",
            "check_closed",
            "check_judging",
            "face_not_enrolled",
            "consent_required",
        ),
        storage=True,
    ),
    Endpoint(
        "get",
        "/api/v1/checks/{check_id}",
        "Faces",
        "Where a face check stands",
        "The trainee's own checks only. While `judging`, poll about once a second; then read "
        "the verdict fields as the answer's response.",
        roles=(Role.TRAINEE,),
        responses={200: json_response("CheckState", "The check.")},
    ),
]
