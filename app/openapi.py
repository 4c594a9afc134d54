"""The OpenAPI 3.1 description of the JSON API, served as JSON and as a page for integrators.

The document is plain Python data, read and reviewed like code. Each endpoint is one
`endpoint(...)` entry in ENDPOINTS naming its schemas and the error codes it can answer;
authentication, CSRF, JSON-body errors and path parameters are added from those facts.
tests/test_openapi.py fails when the URL map and this document disagree, and checks real
responses against the schemas.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from app.courses.models import LEVEL_NAMES_ZH, CourseLevel, CourseStatus, LessonStatus
from app.identity.models import Role, Sex
from app.inputs import MAX_ID
from app.learning.models import SessionEnd
from app.learning.rules import Reason
from app.learning.service import MAX_SEQ
from app.notifications.service import KINDS as NOTIFICATION_KINDS
from app.subsidy.models import Action
from app.subsidy.rules import Status as SubsidyStatus
from app.subsidy.service import REASON_MESSAGES
from app.verification.models import CheckKind, CheckStatus
from media_pipeline.limits import BURST_SPAN_MS, MAX_BURST_FRAMES, MAX_CAPTION_BYTES, MIB

bp = Blueprint("openapi", __name__)

Schema = dict[str, Any]

# --- Schema builders ----------------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """The same schema, also allowing JSON null."""
    kind = schema.get("type")
    if not isinstance(kind, str):
        return {"anyOf": [schema, {"type": "null"}]}
    result = {**schema, "type": [kind, "null"]}
    if "enum" in result:
        result["enum"] = [*result["enum"], None]
    return result


def obj(
    required: dict[str, Schema],
    optional: dict[str, Schema] | None = None,
    *,
    description: str = "",
    closed: bool = True,
) -> Schema:
    """An object schema. Response bodies are closed: a field added in code must be added here."""
    schema: Schema = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = {**required, **(optional or {})}
    schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def string(description: str = "", **constraints: Any) -> Schema:
    return {
        "type": "string",
        **({"description": description} if description else {}),
        **constraints,
    }


def integer(description: str = "", **constraints: Any) -> Schema:
    return {
        "type": "integer",
        **({"description": description} if description else {}),
        **constraints,
    }


def one_of(values: Iterable[Any], description: str = "") -> Schema:
    return string(description, enum=[str(value) for value in values])


def array(items: Schema, description: str = "") -> Schema:
    return {
        "type": "array",
        **({"description": description} if description else {}),
        "items": items,
    }


# --- Schemas: what the code reads and writes ----------------------------------------------------

OCCUPATION_FIELDS: dict[str, Schema] = {
    "code": string("Code in the 2022 Occupational Classification, e.g. `4-10-01-06`."),
    "name": string(),
    "level": integer(
        "1 major group, 2 medium group, 3 minor group, 4 detailed occupation.", minimum=1, maximum=4
    ),
    "parent_code": nullable(string("The group above; null for major groups.")),
}

SCORE = (
    "The best frame's face score, in the terms of the model that judged: a distance for "
    "`dlib` (lower is more alike), a cosine similarity for ONNX models (higher is more alike)."
)
LEVEL_INPUTS = [*LEVEL_NAMES_ZH.values(), *(level.value for level in CourseLevel)]

SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {"error": ref("ErrorBody")},
        description="Every failure of the JSON API has this shape, with an HTTP status to match.",
        closed=False,  # `already_enrolled` also names the enrolment at the top level
    ),
    "ErrorBody": obj(
        {
            "code": string("Stable, machine-readable reason: branch on this, never on `message`."),
            "message": string("For people, in the caller's language (Chinese by default)."),
        },
        {
            "fields": {
                "type": "object",
                "description": "With `invalid`: each bad input field and what is wrong with it.",
                "additionalProperties": {"type": "string"},
            },
            "expected_offset": integer(
                "With `wrong_offset`: the byte the next chunk must start at.", minimum=0
            ),
            "expected_total": integer(
                "With `total_changed`: the total size of the upload in progress.", minimum=1
            ),
            "lesson_ids": array(
                {"type": "integer"}, "With `lessons_not_ready`: lessons without a processed video."
            ),
            "retry_after_s": integer(
                "With `locked_out`, `too_many_registrations` and `too_many_requests`: seconds "
                "until the address (or phone) may try again.",
                minimum=0,
            ),
            "captcha_id": string(
                "With `captcha_required`: send it back as `captcha_id`, with the characters "
                "of its picture as `captcha_answer`. Good for one try, for 5 minutes."
            ),
            "captcha_image": string(
                "With `captcha_required`: where the PNG picture is (a page address, no "
                "credentials needed).",
                format="uri-reference",
            ),
            "id": integer("With `already_enrolled`: the existing enrolment."),
            "end_reason": nullable(
                one_of(SessionEnd, "With `session_ended`: why the session ended.")
            ),
        },
        closed=False,  # a code may carry details of its own; unknown ones are safe to ignore
    ),
    # Accounts
    "Registration": obj(
        {
            "name": string("Name in Chinese characters as on the ID card, 2 to 20.", minLength=2),
            "id_number": string(
                "18-digit resident ID number (GB 11643-1999); the last character may be X.",
                examples=["110105199003071239"],
            ),
            "phone": string("11-digit mainland mobile number.", pattern=r"^1[3-9]\d{9}$"),
            "password": string(
                "8 to 128 characters, letters and digits, not containing the ID or phone number.",
                minLength=8,
                maxLength=128,
            ),
        },
        {
            "phone_code": string(
                "While SMS is on (`SMS_BACKEND`): the 6-digit code texted to `phone` by "
                "`POST /api/v1/auth/phone-code`; missing or wrong, `invalid_code`.",
                pattern=r"^\d{6}$",
            ),
        },
        description="A trainee registering by real name; every problem is reported at once.",
        closed=False,
    ),
    "PhoneCodeRequest": obj(
        {"phone": string("11-digit mainland mobile number.", pattern=r"^1[3-9]\d{9}$")},
        closed=False,
    ),
    "CodeSent": obj(
        {
            "message": string("For people, in the caller's language."),
            "expires_in_s": integer("The code works this long.", minimum=1),
            "resend_after_s": integer("Another code for this phone after this long.", minimum=1),
        }
    ),
    "PasswordResetRequest": obj(
        {"login": string("The trainee's resident ID number.")},
        closed=False,
    ),
    "PasswordResetConfirm": obj(
        {
            "login": string("The trainee's resident ID number."),
            "code": string("The 6-digit code texted to the account's phone.", pattern=r"^\d{6}$"),
            "password": string(
                "The new password: 8 to 128 characters, letters and digits, not containing "
                "the ID or phone number.",
                minLength=8,
                maxLength=128,
            ),
        },
        closed=False,
    ),
    "PasswordReset": obj({"message": string("For people, in the caller's language.")}),
    "Registered": obj({"id": integer("The new account.")}),
    "TokenRequest": obj(
        {
            "login": string("A trainee's resident ID number, or a staff username."),
            "password": string(),
        },
        {
            "captcha_id": string("After `captcha_required`: the captcha answered."),
            "captcha_answer": string("The characters in its picture; case does not matter."),
        },
        closed=False,
    ),
    "PasswordChange": obj(
        {
            "current_password": string(),
            "new_password": string(
                "8 to 128 characters with letters and digits, not containing the ID number, "
                "phone number or username.",
                minLength=8,
                maxLength=128,
            ),
        },
        closed=False,
    ),
    "Token": obj(
        {
            "token": string("Send as `Authorization: Bearer <token>`. Shown only this once."),
            "expires_at": string("When the token stops working.", format="date-time"),
        }
    ),
    "User": obj(
        {
            "id": integer(),
            "role": one_of(Role),
            "name": string(),
            "username": nullable(string("Staff and platform accounts.")),
            "id_number": nullable(string("Masked, e.g. `110105********1239`. Trainees only.")),
            "phone": nullable(string("Masked, e.g. `139****5678`.")),
            "birth_date": nullable(string(format="date")),
            "sex": nullable(one_of(Sex)),
        }
    ),
    # Occupations
    "Occupation": obj(OCCUPATION_FIELDS),
    "OccupationPage": obj(
        {
            "items": array(ref("Occupation")),
            "total": integer("Matches across all pages.", minimum=0),
        }
    ),
    "OccupationDetail": obj(
        {
            **OCCUPATION_FIELDS,
            "children": array(ref("Occupation"), "The nodes directly below, in the book's order."),
        }
    ),
    # Courses
    "CatalogueCourse": obj(
        {
            "id": integer(),
            "title": string(),
            "url": string("The course's page on this site, e.g. `/courses/12`."),
            "occupation": obj(
                {
                    "code": string("Code in the 2022 Occupational Classification."),
                    "name": string(),
                }
            ),
            "platform": obj({"id": integer(), "name": string()}),
            "level": nullable(one_of(CourseLevel)),
            "level_label": nullable(string("The level in the caller's language.")),
            "hours": {"type": "number", "description": "Class hours the course declares."},
            "lessons": integer(minimum=0),
            "video_s": nullable(
                {"type": "number", "description": "The length of all its videos, in seconds."}
            ),
            "published_at": nullable(string(format="date-time")),
        }
    ),
    "CataloguePage": obj(
        {
            "items": array(ref("CatalogueCourse")),
            "total": integer("Matches across all pages.", minimum=0),
            "page": integer(minimum=1),
            "per_page": integer(minimum=1, maximum=50),
            "occupation": {
                "anyOf": [ref("Occupation"), {"type": "null"}],
                "description": "The occupation or group searched within; null for all.",
            },
        }
    ),
    "CourseStatus": one_of(
        CourseStatus,
        "`draft` and `rejected` courses can change; `in_review`, `published` and `withdrawn` "
        "are locked (`course_locked`), except that captions may be replaced in review and "
        "after publication.",
    ),
    "LessonStatus": one_of(
        LessonStatus,
        "`awaiting_upload` → `uploading` → `queued` → `processing` → `ready`, or `failed` "
        "(see `error`); a new upload from byte 0 starts over.",
    ),
    "NewCourse": obj(
        {
            "occupation_code": string(
                "A detailed occupation (level 4), e.g. `6-31-01-03`.", examples=["6-31-01-03"]
            ),
            "title": string("At most 200 characters.", minLength=1, maxLength=200),
            "hours": {
                "type": ["number", "string"],
                "description": "Nominal class hours from 0.5 to 2000, kept to one decimal; "
                "a numeric string is accepted.",
                "minimum": 0.5,
                "maximum": 2000,
                "examples": [16],
            },
        },
        {
            "level": nullable(
                one_of(
                    [*LEVEL_INPUTS, ""], "Qualification level, by Chinese name or code; optional."
                )
            ),
            "description": string("At most 20,000 characters.", maxLength=20_000),
        },
        closed=False,
    ),
    "CourseCreated": obj({"id": integer(), "status": ref("CourseStatus")}),
    "CourseSubmitted": obj({"id": integer(), "status": ref("CourseStatus")}),
    "CoverSet": obj({"id": integer(), "cover": {"const": True}}),
    "LessonSummary": obj(
        {
            "id": integer(),
            "position": integer(minimum=1),
            "title": string(),
            "status": ref("LessonStatus"),
        }
    ),
    "Course": obj(
        {
            "id": integer(),
            "status": ref("CourseStatus"),
            "title": string(),
            "occupation_code": string(),
            "occupation_name": string(),
            "level": nullable(one_of(CourseLevel)),
            "level_name": nullable(one_of(LEVEL_NAMES_ZH.values(), "The level's Chinese name.")),
            "hours": {"type": "number", "description": "Nominal class hours."},
            "description": string(),
            "reject_reason": nullable(string("Why the bureau rejected it, when it did.")),
            "lessons": array(ref("LessonSummary"), "In order of position."),
        }
    ),
    "CourseList": obj({"items": array(ref("Course"), "The platform's courses, oldest first.")}),
    # Lessons
    "NewLesson": obj(
        {"title": string("At most 200 characters.", minLength=1, maxLength=200)},
        {
            "position": integer(
                "1 to (number of lessons + 1); later lessons move down. Default: last.", minimum=1
            )
        },
        closed=False,
    ),
    "LessonCreated": obj({"id": integer(), "position": integer(minimum=1)}),
    "Rendition": obj(
        {
            "name": string("e.g. `360p`."),
            "width": integer(),
            "height": integer(),
            "bandwidth": integer("Peak bit rate, bits per second."),
        }
    ),
    "CaptionTrack": obj(
        {
            "language": string("BCP 47 tag, e.g. `zh-CN`."),
            "label": string("Shown in the player's menu."),
        }
    ),
    "Lesson": obj(
        {
            "id": integer(),
            "course_id": integer(),
            "position": integer(minimum=1),
            "title": string(),
            "status": ref("LessonStatus"),
            "progress": {"type": "number", "minimum": 0, "maximum": 100, "description": "Percent."},
            "duration_s": nullable({"type": "number", "description": "Once processed."}),
            "error": nullable(
                obj(
                    {"code": string(), "message": string()},
                    description="Why processing failed, e.g. `not_a_video`, `truncated`, "
                    "`unsupported_codec`, `too_long`; upload a new file from byte 0.",
                )
            ),
            "playlist_url": nullable(
                string("Signed HLS master playlist, short-lived; `ready` only.", format="uri")
            ),
            "poster_url": nullable(string("Signed poster image; `ready` only.", format="uri")),
            "renditions": array(ref("Rendition")),
            "captions": array(ref("CaptionTrack")),
            "upload": obj(
                {
                    "received_bytes": integer(minimum=0),
                    "total_bytes": nullable(integer(minimum=1)),
                }
            ),
        }
    ),
    "UploadState": obj(
        {
            "received_bytes": integer(
                "Bytes stored so far: the offset the next chunk starts at.", minimum=0
            ),
            "total_bytes": nullable(integer("Total size announced by Content-Range.", minimum=1)),
            "status": ref("LessonStatus"),
        }
    ),
    "CaptionUpload": obj(
        {
            "file": string(
                f"SRT or WebVTT, UTF-8, at most {MAX_CAPTION_BYTES // MIB} MB; stored as WebVTT.",
                contentMediaType="text/vtt",
            ),
            "language": string("BCP 47 tag such as `zh-CN` or `en`; replaces that language."),
        },
        closed=False,
    ),
    # Study
    "Enrolled": obj({"id": integer("The new enrolment.")}),
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
    # Subsidy
    "SubsidyReason": obj(
        {
            "code": string(
                "Stable code. `check_<code>` for a failed check (e.g. `check_mismatch`).",
                enum=sorted(REASON_MESSAGES),
            ),
            "message": string("The reason in the caller's language."),
            "evidence": {
                "type": "object",
                "description": "What the reason rests on: ids of `check`s, `session`s, "
                "`lessons`, a `flag`, a `decision` or an `appeal`, with figures such as "
                "`score` (with its `model`) and `verified_s`.",
            },
        }
    ),
    "Subsidy": obj(
        {
            "status": string(
                "`eligible`: complete on verified time with every check passed or cleared, or "
                "approved. `needs_review`: an auditor must look (failed or missed check, "
                "duplicate identity, appeal, random spot check). `ineligible`: an auditor "
                "rejected it. `in_progress`: otherwise.",
                enum=[status.value for status in SubsidyStatus],
            ),
            "reasons": array(ref("SubsidyReason"), "Why, each with its evidence; risks first."),
            "amount_yuan": nullable(
                string(
                    "Decimal yuan. Eligible: the amount the granting decision recorded. "
                    "Ineligible: `0.00`. Otherwise what the standard would pay today; null "
                    "when no standard covers the course (reason `no_standard`).",
                )
            ),
        }
    ),
    "ReviewCheck": obj(
        {
            "id": integer(),
            "passed": {"type": "boolean"},
            "code": nullable(string("Why it failed, e.g. `mismatch`, `replay`, `expired`.")),
            "score": nullable({"type": "number", "description": SCORE}),
            "model": nullable(string("The face model that judged the check.")),
            "at": string("When it was answered or expired.", format="date-time"),
            "cleared": {"type": "boolean", "description": "An auditor cleared this failure."},
        }
    ),
    "ReviewItem": obj(
        {
            "enrollment_id": integer(),
            "trainee": obj(
                {
                    "name": string("Masked: the first character, then `*`."),
                    "id_number": nullable(string("Masked resident ID number.")),
                }
            ),
            "course": obj({"id": integer(), "title": string()}),
            "completed": {"type": "boolean"},
            "risk": integer("Higher first: the sum of the signals' weights."),
            "reasons": array(ref("SubsidyReason")),
            "checks": array(ref("ReviewCheck"), "Every answered or expired check."),
        }
    ),
    "ReviewQueue": obj({"items": array(ref("ReviewItem"), "Riskiest first, then oldest.")}),
    "DecisionRequest": obj(
        {
            "decision": string(enum=["approve", "reject"]),
            "reason": string("Mandatory; kept with the decision.", maxLength=2000),
        },
        {"password": string("The caller's password, after `reauth_required`.")},
    ),
    "ReasonRequest": obj(
        {"reason": string("Mandatory; kept with the decision.", maxLength=2000)},
        {"password": string("The caller's password, after `reauth_required`.")},
    ),
    "DecisionMade": obj({"id": integer(), "action": string(enum=[a.value for a in Action])}),
    "DecisionResult": obj(
        {
            "decision": ref("DecisionMade"),
            "subsidy": ref("Subsidy"),
            "certificate_no": nullable(string()),
        },
        {"enrollment_id": integer()},
    ),
    "AppealRequest": obj({"message": string("Why the rejection is wrong.", maxLength=2000)}),
    "AppealCreated": obj({"id": integer(), "enrollment_id": integer()}),
    "ArchiveItem": obj(
        {
            "enrollment_id": integer(),
            "course": obj({"id": integer(), "title": string(), "hours": string("Class hours.")}),
            "occupation": obj({"code": string(), "name": string()}),
            "level": nullable(string(enum=[level.value for level in CourseLevel])),
            "enrolled_at": string(format="date-time"),
            "completed_at": nullable(string(format="date-time")),
            "verified_hours": {"type": "number"},
            "checks": obj(
                {
                    "total": integer(),
                    "passed": integer(),
                    "failed": integer(),
                    "cleared": integer("Failed checks an auditor cleared."),
                }
            ),
            "subsidy": ref("Subsidy"),
            "decisions": array(
                obj(
                    {
                        "action": string(enum=[a.value for a in Action]),
                        "reason": string(),
                        "amount_yuan": nullable(string()),
                        "at": string(format="date-time"),
                    }
                )
            ),
            "appeals": array(obj({"message": string(), "at": string(format="date-time")})),
            "certificates": array(ref("Certificate"), "Revoked ones too."),
        }
    ),
    "Archive": obj(
        {
            "trainee": obj({"name": string(), "id_number": nullable(string("Masked."))}),
            "items": array(ref("ArchiveItem"), "Oldest enrolment first."),
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
    "FaceUpload": obj(
        {
            "image": string(
                "One photo: JPEG, PNG or WebP, at most 10 MB.", contentMediaType="image/*"
            )
        },
        closed=False,
    ),
    "FaceEnrolled": obj(
        {
            "status": string(
                "`active`, or `pending_approval` for a re-enrolment after studying.",
                enum=["active", "pending_approval"],
            ),
            "quality": obj(
                {
                    "face_px": integer("Height of the face in pixels."),
                    "blur": {"type": "number", "description": "Sharpness (higher is sharper)."},
                    "brightness": {"type": "number", "description": "Mean light on the face."},
                }
            ),
            "under_review": {
                "type": "boolean",
                "description": "The face matches another trainee's: an auditor looks first.",
            },
        }
    ),
    "ConsentRequired": obj(
        {
            "purpose": one_of(["face_verification"]),
            "version": string("The version of the text in force, e.g. `face-2026-12`."),
            "title": string(),
            "text": string(
                "The whole text in the caller's language, paragraphs separated by blank lines."
            ),
        }
    ),
    "ConsentGiven": obj(
        {
            "purpose": one_of(["face_verification"]),
            "version": string(),
            "given_at": string(format="date-time"),
        }
    ),
    "ConsentStatus": obj(
        {
            "required": array(
                ref("ConsentRequired"), "Consents not yet given at the current version."
            ),
            "given": array(ref("ConsentGiven"), "Consents standing (not withdrawn)."),
        }
    ),
    "ConsentInput": obj(
        {"purpose": one_of(["face_verification"]), "version": string()}, closed=False
    ),
    "ConsentWithdrawn": obj(
        {
            "purpose": one_of(["face_verification"]),
            "withdrawn_at": string(format="date-time"),
            "was_given": {"type": "boolean"},
            "deleted": obj({"reference_faces": integer(minimum=0), "images": integer(minimum=0)}),
            "kept": obj(
                {
                    "images": integer(
                        "Behind subsidy decisions already made, kept for their retention period.",
                        minimum=0,
                    )
                }
            ),
            "meaning": array(string(), "What the withdrawal means, in the caller's language."),
        }
    ),
    "Notification": obj(
        {
            "id": integer(minimum=1),
            "kind": one_of(sorted(NOTIFICATION_KINDS)),
            "text": string("Rendered when read, in the caller's language."),
            "link": nullable(string("Where to act on it (a page path).")),
            "created_at": string(format="date-time"),
            "read": {"type": "boolean"},
            "read_at": nullable(string(format="date-time")),
        }
    ),
    "NotificationRead": obj(
        {
            "id": integer(minimum=1),
            "kind": string(),
            "text": string(),
            "link": nullable(string()),
            "created_at": string(format="date-time"),
            "read": {"type": "boolean"},
            "read_at": nullable(string(format="date-time")),
            "unread": integer(minimum=0),
        }
    ),
    "Inbox": obj(
        {
            "items": array(ref("Notification"), "Newest first."),
            "unread": integer(minimum=0),
            "next_before": nullable(
                integer("Pass as `before` for the next (older) page.", minimum=1)
            ),
        }
    ),
    "FaceStatus": obj(
        {
            "enrolled": {"type": "boolean"},
            "pending_approval": {"type": "boolean"},
            "under_review": {"type": "boolean"},
            "closed": {
                "type": "boolean",
                "description": "Staff found this face on another account of the same person.",
            },
            "enrolled_at": nullable(string(format="date-time")),
        }
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
    # Certificates
    "Certificate": obj(
        {
            "valid": {
                "type": "boolean",
                "description": "Issued and not revoked: the certificate certifies its training.",
            },
            "number": string("The certificate number, e.g. `VS2026-7KQ3M-X9D2R`."),
            "name": string("The holder's name, masked: the first character, then `*` (`张**`)."),
            "occupation_code": string("Code in the 2022 Occupational Classification."),
            "occupation_name": string(),
            "hours": {"type": "number", "minimum": 0, "description": "Verified study hours."},
            "issued_at": string(format="date-time"),
            "revoked_at": nullable(
                string("When it was revoked; null while valid.", format="date-time")
            ),
        }
    ),
    "OpenApiDocument": {"type": "object", "description": "This document."},
}

# --- Errors: every code the API answers with, and its status -----------------------------------

ERRORS: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "The body is not a JSON object."),
    "too_deep": (400, "The JSON nests deeper than 32 levels."),
    "invalid_text": (
        422,
        "Some text (in the path, the query, a form field or the JSON body; see `fields`) holds "
        "control characters other than tab and line breaks, unpaired surrogates, direction "
        "overrides, or only invisible characters.",
    ),
    "storage_unavailable": (503, "Storage cannot be reached just now; try again later."),
    "storage_full": (507, "Storage is full just now; try again later."),
    "csrf_failed": (400, "A signed-in browser session sent no valid `X-CSRFToken` header."),
    "length_required": (400, "No `Content-Length`."),
    "bad_content_range": (
        400,
        "`Content-Range` is not `bytes <first>-<last>/<total>`, or the range does not fit.",
    ),
    "length_mismatch": (400, "The body length differs from the size in `Content-Range`."),
    "incomplete_chunk": (400, "The connection broke mid-chunk; send the chunk again."),
    "unauthorized": (401, "No credentials: send a bearer token or sign in."),
    "invalid_token": (401, "The bearer token is wrong, expired or revoked."),
    "bad_credentials": (401, "Wrong login or password."),
    "captcha_required": (
        401,
        "Too many failed sign-ins for this login: answer the captcha (`captcha_id`, "
        "`captcha_image`) with the password. The account itself is never locked.",
    ),
    "reauth_required": (
        401,
        "The caller last authenticated more than `REAUTH_S` ago (a token's issue counts): "
        "send the request again with `password`.",
    ),
    "forbidden": (403, "The caller's role may not do this."),
    "not_enrolled": (403, "Enrol in the course first."),
    "face_not_enrolled": (403, "Enrol a reference face before studying."),
    "consent_required": (
        403,
        "No face is processed without the trainee's consent to face processing at the current "
        "version of its text (`GET /api/v1/me/consent`).",
    ),
    "unknown_purpose": (422, "Consent is asked only for `face_verification`."),
    "consent_version_outdated": (422, "The version is not that of the text in force."),
    "notification_not_found": (404, "No notification of the caller has this id."),
    "identity_under_review": (403, "An auditor is reviewing the trainee's identity."),
    "identity_duplicate": (403, "Staff found the trainee already has another account."),
    "not_found": (404, "No such resource, or it belongs to another platform."),
    "already_registered": (409, "This ID number already has an account."),
    "occupation_not_found": (404, "No occupation or group has the code given in `occupation`."),
    "course_locked": (409, "The course is in review, published or withdrawn."),
    "no_lessons": (409, "The course has no lessons."),
    "lessons_not_ready": (409, "Some lessons have no processed video (see `lesson_ids`)."),
    "wrong_offset": (
        409,
        "The chunk does not start where the upload stands; resume at `expected_offset`.",
    ),
    "total_changed": (
        409,
        "The total size differs from the upload in progress (`expected_total`).",
    ),
    "processing": (409, "The video is queued or being processed."),
    "already_enrolled": (409, "Already enrolled; `id` names the enrolment."),
    "lesson_not_ready": (409, "The lesson's video is not ready."),
    "check_closed": (409, "The face check already passed, failed or expired (`result`)."),
    "check_judging": (
        409,
        "An earlier answer to the check is still being judged; poll `GET /api/v1/checks/{id}`.",
    ),
    "session_conflict": (409, "The lesson was opened on another device at the same moment."),
    "session_ended": (
        409,
        "The study session ended, e.g. the lesson was opened elsewhere (`end_reason`).",
    ),
    "too_large": (413, "The body, or the announced video, exceeds the limit."),
    "unsupported_media_type": (415, "Send the body as `application/json`."),
    "not_a_video": (415, "The first bytes are not a known video container."),
    "invalid": (422, "Some fields are not valid; see `fields`."),
    "empty_upload": (422, "The upload has no bytes."),
    "not_an_image": (422, "The upload is not a usable image (JPEG or PNG; WebP for faces)."),
    "image_too_large": (413, "The photo is too large, in bytes or in pixels."),
    "no_face": (422, "No face in the photo."),
    "multiple_faces": (422, "More than one face in the photo."),
    "face_too_small": (422, "The face is too small: come closer."),
    "too_blurry": (422, "The photo is blurred."),
    "too_dark": (422, "The photo is too dark."),
    "too_bright": (422, "The photo is too bright."),
    "invalid_captions": (422, "The file is not SRT or WebVTT captions, or holds no cues."),
    "locked_out": (
        429,
        "Too many failed sign-ins from this address; wait `retry_after_s` (`Retry-After`).",
    ),
    "too_many_registrations": (
        429,
        "Too many registrations from this address; wait `retry_after_s` (`Retry-After`).",
    ),
    "too_many_requests": (
        429,
        "Too many codes asked for from this address or for this phone; wait `retry_after_s` "
        "(`Retry-After`).",
    ),
    "invalid_code": (
        422,
        "The SMS code is missing, wrong, expired, already used or was tried too often (one "
        "answer for all); ask for a new one. `fields` names the field.",
    ),
    "sms_disabled": (404, "Text messages are turned off on this server (`SMS_BACKEND` empty)."),
    "password_change_required": (
        403,
        "Staff set a temporary password: only `POST /api/v1/me/password`, `GET /api/v1/me` "
        "and signing out work until a new one is chosen.",
    ),
    "sms_unavailable": (
        503,
        "Text messages cannot be sent just now (SMS off or the provider failed); try again later.",
    ),
    "certificate_not_found": (404, "No certificate has this number."),
    "not_complete": (409, "The course is not complete on verified time."),
    "already_eligible": (409, "The enrolment is already eligible."),
    "already_rejected": (409, "The enrolment is already rejected."),
    "needs_another_auditor": (
        409,
        "The caller proposed this rejection; a second auditor must confirm it.",
    ),
    "rejected": (409, "The enrolment was rejected; only the trainee's appeal reopens it."),
    "check_not_failed": (409, "Only a failed check can be cleared."),
    "already_cleared": (409, "The check is already cleared."),
    "not_rejected": (409, "Only a rejected subsidy can be appealed."),
    "already_appealed": (409, "The appeal is already with the auditors."),
    "no_image": (404, "The check has no retained image."),
    "purged": (404, "The image was purged at the end of its retention period."),
}

# Shared responses, used wherever an operation answers exactly these codes for a status.
STANDARD_ERRORS: dict[str, tuple[str, ...]] = {
    "Unauthorized": ("invalid_token", "unauthorized"),
    "Forbidden": ("forbidden",),
    "NotFound": ("not_found",),
    "TooLarge": ("too_large",),
    "UnsupportedMediaType": ("unsupported_media_type",),
    "Invalid": ("invalid",),
}

STATUS_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    422: "Not valid",
    429: "Too many requests",
    503: "Service unavailable",
    507: "Insufficient storage",
}


def error_response(codes: Iterable[str]) -> dict[str, Any]:
    codes = sorted(codes)
    status = ERRORS[codes[0]][0]
    lines = [f"- `{code}`: {ERRORS[code][1]}" for code in codes]
    response: dict[str, Any] = {
        "description": STATUS_TEXT[status] + ".\n\n" + "\n".join(lines),
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [ref("Error")],
                    "properties": {"error": {"properties": {"code": {"enum": codes}}}},
                }
            }
        },
    }
    if {"locked_out", "too_many_registrations", "too_many_requests", "sms_unavailable"} & set(
        codes
    ):
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds until the address may try again.",
                "schema": {"type": "integer"},
            }
        }
    return response


# --- Operations ---------------------------------------------------------------------------------

# Ids in paths: anything outside this range is answered `not_found` (app/inputs.py).
ID = integer(minimum=1, maximum=MAX_ID)
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "course_id": {"schema": ID, "description": "A course of the calling platform."},
    "lesson_id": {"schema": ID, "description": "A lesson."},
    "code": {"schema": string(), "description": "Occupation or group code, e.g. `6-31-01-03`."},
    "enrollment_id": {"schema": ID, "description": "An enrolment."},
    "purpose": {"schema": string(), "description": "`face_verification`."},
    "notification_id": {"schema": ID, "description": "A notification of the caller."},
    "session_id": {"schema": ID, "description": "A study session of the caller."},
    "check_id": {
        "schema": ID,
        "description": "A face check: the caller's own for trainees, any for auditors.",
    },
    "number": {
        "schema": string(),
        "description": "A certificate number as printed, e.g. `VS2026-7KQ3M-X9D2R`; case, "
        "spaces and dashes do not matter, and O, I, L are read as 0, 1, 1.",
    },
}

UNSAFE = frozenset({"post", "put", "patch", "delete"})
JSON_BODY_ERRORS = ("malformed_json", "too_deep", "too_large", "unsupported_media_type")
# Operations that read or write the object store, which may be full or out of reach.
STORAGE_OPERATIONS = frozenset(
    {
        ("put", "/api/v1/courses/{course_id}/cover"),
        ("put", "/api/v1/lessons/{lesson_id}/video"),
        ("post", "/api/v1/lessons/{lesson_id}/captions"),
        ("get", "/api/v1/lessons/{lesson_id}"),
        ("post", "/api/v1/lessons/{lesson_id}/sessions"),
        ("post", "/api/v1/me/face"),
        ("post", "/api/v1/checks/{check_id}"),
        ("get", "/api/v1/audit/checks/{check_id}/image"),
    }
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    tag: str
    summary: str
    description: str = ""
    # None: anyone. (): any signed-in caller. Otherwise the roles allowed.
    roles: tuple[Role, ...] | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None
    responses: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    @property
    def operation_id(self) -> str:
        words = re.sub(r"[{}]", "", self.path.removeprefix("/api/v1/")).split("/")
        return "_".join([self.method, *(word.replace("-", "_") for word in words if word)])

    def security(self) -> list[dict[str, list[str]]]:
        if self.roles is None:
            return []
        roles = [role.value for role in self.roles]
        schemes = [{"bearer": roles}]
        if self.roles != (Role.PLATFORM,):  # platform accounts have no password to sign in with
            session = {"session": roles}
            if self.method in UNSAFE:
                session["csrfToken"] = []
            schemes.append(session)
        return schemes

    def error_codes(self) -> set[str]:
        # Any text the caller sends, even in a query nobody reads, is checked (app/inputs.py).
        codes = {*self.errors, "invalid_text"}
        if (self.method, self.path) in STORAGE_OPERATIONS:
            codes |= {"storage_full", "storage_unavailable"}
        if self.roles is not None:
            codes |= {"unauthorized", "invalid_token"}
            if self.roles:
                codes.add("forbidden")
            if self.method in UNSAFE and self.roles != (Role.PLATFORM,):
                codes.add("csrf_failed")
        if self.body and "application/json" in self.body["content"]:
            codes |= set(JSON_BODY_ERRORS)
        if "{" in self.path:
            codes.add("not_found")
        return codes

    def operation(self) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "operationId": self.operation_id,
            "tags": [self.tag],
            "summary": self.summary,
        }
        if self.description:
            operation["description"] = self.description
        operation["security"] = self.security()
        parameters = [
            {"name": name, "in": "path", "required": True, **PATH_PARAMETERS[name]}
            for name in re.findall(r"{(\w+)}", self.path)
        ]
        if parameters or self.parameters:
            operation["parameters"] = [*parameters, *self.parameters]
        if self.body:
            operation["requestBody"] = self.body
        responses: dict[str, Any] = {str(status): body for status, body in self.responses.items()}
        by_status: dict[int, set[str]] = {}
        for code in self.error_codes():
            by_status.setdefault(ERRORS[code][0], set()).add(code)
        for status, codes in sorted(by_status.items()):
            shared = next((n for n, c in STANDARD_ERRORS.items() if set(c) == codes), None)
            responses[str(status)] = (
                {"$ref": f"#/components/responses/{shared}"} if shared else error_response(codes)
            )
        operation["responses"] = responses
        return operation


def json_request(schema: str, example: dict[str, Any] | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": ref(schema)}
    if example is not None:
        media["example"] = example
    return {"required": True, "content": {"application/json": media}}


def json_response(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def header(
    name: str, schema: Schema, description: str, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": schema,
        "description": description,
    }


PLATFORM = (Role.PLATFORM,)
STAFF = (Role.AUDITOR, Role.ADMIN)

UPLOAD_PROTOCOL = """\
Send the video as raw bytes, in order, one `PUT` per chunk, each with
`Content-Range: bytes <first>-<last>/<total>` (inclusive byte positions, as in
`bytes 0-1048575/73400320`) and a `Content-Length` equal to the chunk's size. A small file may
go in one request without `Content-Range`.

- Chunks may be at most `UPLOAD_CHUNK_MAX_BYTES` (64 MiB by default); the whole video at most
`VIDEO_MAX_BYTES` (4 GiB by default), else `too_large`.
- The answer says how many bytes the server holds (`received_bytes`): `200` while more are
expected, `202` once the last byte is in and processing has been queued.
- After a broken connection, `GET /api/v1/lessons/{lesson_id}/upload` and continue at
`received_bytes`. A chunk sent again is acknowledged (`200`) and ignored; a chunk at any other
offset is refused with `409 wrong_offset` and `expected_offset`.
- The first bytes must look like a video container (MP4, MOV, WebM, MKV, AVI, FLV, MPEG-TS...),
else `415 not_a_video`; the full check runs during processing (see the lesson's `error`).
- Once the lesson is `ready` or `failed`, a new upload starting at byte 0 replaces the video.
- While the lesson is `queued` or `processing`, uploads are refused with `409 processing`."""

ENDPOINTS: list[Endpoint] = [
    # Accounts
    Endpoint(
        "post",
        "/api/v1/auth/register",
        "Accounts",
        "Register a trainee",
        "Creates a trainee account under a real name and resident ID number.",
        body=json_request(
            "Registration",
            {
                "name": "李四",
                "id_number": "110105199003071239",
                "phone": "13912345678",
                "password": "Study2026ok",
            },
        ),
        responses={201: json_response("Registered", "Registered.")},
        errors=("invalid", "invalid_code", "already_registered", "too_many_registrations"),
    ),
    Endpoint(
        "post",
        "/api/v1/auth/phone-code",
        "Accounts",
        "Text a registration code to a phone",
        "While SMS is on, registration needs the 6-digit code this texts to the phone "
        "(valid `SMS_CODE_TTL_S`, 5 minutes by default; five tries). One code per phone a "
        "minute and a few an hour, a few more per client address.",
        body=json_request("PhoneCodeRequest", {"phone": "13912345678"}),
        responses={202: json_response("CodeSent", "The code is on its way.")},
        errors=("invalid", "too_many_requests", "sms_disabled", "sms_unavailable"),
    ),
    Endpoint(
        "post",
        "/api/v1/auth/password-reset",
        "Accounts",
        "Text a password-reset code",
        "Texts a code to the phone of the account behind `login`. The answer is the same "
        "whether or not such an account exists or has a phone; only a flood from one client "
        "address is refused (`too_many_requests`).",
        body=json_request("PasswordResetRequest", {"login": "110105199003071239"}),
        responses={202: json_response("CodeSent", "A code was sent if the account exists.")},
        errors=("invalid", "too_many_requests", "sms_disabled", "sms_unavailable"),
    ),
    Endpoint(
        "post",
        "/api/v1/auth/password-reset/confirm",
        "Accounts",
        "Set a new password with the texted code",
        "Every browser session and API token of the account ends. A wrong, expired or used "
        "code, or an unknown login, is `invalid_code`; a weak password is `invalid` (only "
        "once the code is right, which stays usable).",
        body=json_request(
            "PasswordResetConfirm",
            {"login": "110105199003071239", "code": "042917", "password": "Fresh2027ok"},
        ),
        responses={200: json_response("PasswordReset", "The password is changed.")},
        errors=("invalid", "invalid_code"),
    ),
    Endpoint(
        "post",
        "/api/v1/auth/token",
        "Accounts",
        "Get an API token",
        "Trainees sign in with their ID number, staff with their username. After repeated "
        "failures for one login, each try needs a captcha (`captcha_required`); after more "
        "from one client address, the address is locked for a while (`locked_out`). "
        "Platforms get their tokens from the bureau instead.",
        body=json_request("TokenRequest", {"login": "110105199003071239", "password": "…"}),
        responses={200: json_response("Token", "A new token.")},
        errors=("invalid", "bad_credentials", "captcha_required", "locked_out"),
    ),
    Endpoint(
        "delete",
        "/api/v1/auth/token",
        "Accounts",
        "Revoke the calling token",
        "Signs the bearer token of this request out for good.",
        roles=(),
        responses={204: {"description": "Revoked."}},
    ),
    Endpoint(
        "get",
        "/api/v1/me",
        "Accounts",
        "The calling account",
        roles=(),
        responses={200: json_response("User", "The caller.")},
    ),
    Endpoint(
        "post",
        "/api/v1/me/password",
        "Accounts",
        "Change the caller's password",
        "Every signed-in browser session of the account and every other token ends; the "
        "calling token (or browser session) stays.",
        roles=(),
        body=json_request(
            "PasswordChange", {"current_password": "…", "new_password": "Fresh2027ok"}
        ),
        responses={204: {"description": "Changed."}},
        errors=("invalid", "bad_credentials", "locked_out"),
    ),
    # Occupations
    Endpoint(
        "get",
        "/api/v1/occupations",
        "Occupations",
        "Search the occupational classification",
        "Matches names containing `q`, codes starting with it, or a GB/T 6565 code.",
        parameters=(
            query("q", string(maxLength=100), "Search text, at most 100 characters."),
            query("level", integer(minimum=0, maximum=4, default=0), "Only this level; 0 any."),
            query("parent", string(), "Only the nodes directly below this code."),
            query("page", integer(minimum=1, maximum=10_000, default=1), "Page number."),
            query("per_page", integer(minimum=1, maximum=100, default=20), "Items per page."),
        ),
        responses={200: json_response("OccupationPage", "One page of matches.")},
        errors=("invalid",),
    ),
    Endpoint(
        "get",
        "/api/v1/occupations/{code}",
        "Occupations",
        "One occupation or group, with its children",
        responses={200: json_response("OccupationDetail", "The node.")},
    ),
    # Courses
    Endpoint(
        "get",
        "/api/v1/catalogue/courses",
        "Occupations",
        "Find published courses",
        "No sign-in. Matches `q` in the course title, the occupation's name or the "
        "platform's name (any case), the start of the occupation's code, or its GB/T 6565 "
        "code; `occupation` keeps only courses filed under that occupation or anywhere below "
        "that group. Newest published first, with the id breaking ties, so pages neither "
        "overlap nor skip. `GET /api/v1/courses` stays the calling platform's own list.",
        parameters=(
            query("q", string(maxLength=100), "Search text, at most 100 characters."),
            query("occupation", string(), "An occupation or group code, e.g. `6-31`."),
            query("page", integer(minimum=1, maximum=10_000, default=1), "Page number."),
            query("per_page", integer(minimum=1, maximum=50, default=20), "Items per page."),
        ),
        responses={200: json_response("CataloguePage", "One page of courses.")},
        errors=("invalid", "occupation_not_found"),
    ),
    Endpoint(
        "post",
        "/api/v1/courses",
        "Courses",
        "Create a course",
        "The course starts as a `draft` of the calling platform.",
        roles=PLATFORM,
        body=json_request(
            "NewCourse",
            {
                "occupation_code": "6-31-01-03",
                "title": "低压电工作业",
                "hours": 16,
                "level": "初级",
            },
        ),
        responses={201: json_response("CourseCreated", "Created.")},
        errors=("invalid",),
    ),
    Endpoint(
        "get",
        "/api/v1/courses",
        "Courses",
        "List the platform's courses",
        roles=PLATFORM,
        responses={200: json_response("CourseList", "Every course of the calling platform.")},
    ),
    Endpoint(
        "get",
        "/api/v1/courses/{course_id}",
        "Courses",
        "One course with its lessons",
        roles=PLATFORM,
        responses={200: json_response("Course", "The course.")},
    ),
    Endpoint(
        "post",
        "/api/v1/courses/{course_id}/submit",
        "Courses",
        "Submit a course for review",
        "A `draft` or `rejected` course goes `in_review` once every lesson is `ready`. "
        "It is locked until the bureau decides.",
        roles=PLATFORM,
        responses={200: json_response("CourseSubmitted", "In review.")},
        errors=("course_locked", "no_lessons", "lessons_not_ready"),
    ),
    Endpoint(
        "put",
        "/api/v1/courses/{course_id}/cover",
        "Courses",
        "Set the cover image",
        "The raw JPEG or PNG bytes, at most 5 MB; the content decides, not the Content-Type.",
        roles=PLATFORM,
        body={
            "required": True,
            "content": {
                kind: {"schema": string(contentMediaType=kind)}
                for kind in ("image/jpeg", "image/png")
            },
        },
        responses={200: json_response("CoverSet", "Stored.")},
        errors=("course_locked", "too_large", "not_an_image"),
    ),
    # Lessons
    Endpoint(
        "post",
        "/api/v1/courses/{course_id}/lessons",
        "Lessons",
        "Add a lesson",
        "The lesson waits for its video (`awaiting_upload`).",
        roles=PLATFORM,
        body=json_request("NewLesson", {"title": "第一课 安全用电"}),
        responses={201: json_response("LessonCreated", "Created.")},
        errors=("invalid", "course_locked"),
    ),
    Endpoint(
        "get",
        "/api/v1/lessons/{lesson_id}",
        "Lessons",
        "One lesson: processing state, playback and captions",
        "Platforms see their own lessons; auditors and admins every lesson. Poll this while "
        "the lesson is `queued` or `processing`.",
        roles=(Role.PLATFORM, Role.AUDITOR, Role.ADMIN),
        responses={200: json_response("Lesson", "The lesson.")},
    ),
    Endpoint(
        "put",
        "/api/v1/lessons/{lesson_id}/video",
        "Lessons",
        "Upload the video, resumably, in chunks",
        UPLOAD_PROTOCOL,
        roles=PLATFORM,
        parameters=(
            header(
                "Content-Range",
                string(pattern=r"^bytes \d+-\d+/\d+$"),
                "`bytes <first>-<last>/<total>`, inclusive. Leave out to send the whole file.",
            ),
            header(
                "Content-Length",
                integer(minimum=0),
                "The chunk's size in bytes; must equal `<last> - <first> + 1`.",
                required=True,
            ),
        ),
        body={
            "required": True,
            "content": {
                "application/octet-stream": {
                    "schema": string(
                        "The chunk's raw bytes.", contentMediaType="application/octet-stream"
                    )
                }
            },
        },
        responses={
            200: json_response("UploadState", "Stored; send the chunk at `received_bytes`."),
            202: json_response("UploadState", "The whole file is in; processing is queued."),
        },
        errors=(
            "length_required",
            "bad_content_range",
            "length_mismatch",
            "incomplete_chunk",
            "course_locked",
            "wrong_offset",
            "total_changed",
            "processing",
            "too_large",
            "not_a_video",
            "empty_upload",
        ),
    ),
    Endpoint(
        "get",
        "/api/v1/lessons/{lesson_id}/upload",
        "Lessons",
        "Where an upload stands",
        "Ask after a broken connection, then resume at `received_bytes`.",
        roles=PLATFORM,
        responses={200: json_response("UploadState", "The upload's state.")},
    ),
    Endpoint(
        "post",
        "/api/v1/lessons/{lesson_id}/captions",
        "Lessons",
        "Add captions",
        "SRT or WebVTT as multipart field `file`, with `language`. Stored as WebVTT and served "
        "with the HLS playlist; a second file in the same language replaces the first. "
        "Captions are an accessibility fix: unlike the rest of a course they can be replaced "
        "while it is in review or published (the course keeps its status and the admins see "
        "the change); only a withdrawn course refuses them (`course_locked`).",
        roles=PLATFORM,
        body={
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": ref("CaptionUpload"),
                    "encoding": {"file": {"contentType": "text/vtt, application/x-subrip"}},
                }
            },
        },
        responses={201: json_response("CaptionTrack", "Stored.")},
        errors=("invalid", "invalid_captions", "too_large", "course_locked"),
    ),
    # Study
    Endpoint(
        "post",
        "/api/v1/courses/{course_id}/enrollments",
        "Study",
        "Enrol in a published course",
        roles=(Role.TRAINEE,),
        responses={201: json_response("Enrolled", "Enrolled.")},
        errors=("already_enrolled",),
    ),
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
        errors=("invalid", "session_ended"),
    ),
    # Faces
    Endpoint(
        "get",
        "/api/v1/me/consent",
        "Consent",
        "The consent to face processing: what is still required, what stands",
        "`required` lists each consent not yet given at the current version of its text, with "
        "the text in the caller's language (what is captured, why, who sees it, how long it is "
        "kept, how to withdraw).",
        roles=(Role.TRAINEE,),
        responses={200: json_response("ConsentStatus", "Required and given consents.")},
    ),
    Endpoint(
        "post",
        "/api/v1/me/consent",
        "Consent",
        "Consent to face processing",
        "Give the version read (the current one). Giving it again changes nothing (200).",
        roles=(Role.TRAINEE,),
        body=json_request(
            "ConsentInput", {"purpose": "face_verification", "version": "face-2026-12"}
        ),
        responses={
            201: json_response("ConsentGiven", "Recorded."),
            200: json_response("ConsentGiven", "Already given at this version."),
        },
        errors=("invalid", "unknown_purpose", "consent_version_outdated"),
    ),
    Endpoint(
        "delete",
        "/api/v1/me/consent/{purpose}",
        "Consent",
        "Withdraw the consent to face processing",
        "Records the withdrawal and deletes the trainee's face data at once: every reference "
        "face and its encoding, and every stored image but those behind a subsidy decision "
        "already made (kept for `EVIDENCE_RETENTION_DAYS` after it). Study needing face checks "
        "can no longer be credited; the bureau's offline route remains. Repeatable.",
        roles=(Role.TRAINEE,),
        responses={200: json_response("ConsentWithdrawn", "What was deleted and what it means.")},
        errors=("unknown_purpose",),
    ),
    Endpoint(
        "put",
        "/api/v1/me/face",
        "Faces",
        "Enrol the reference face",
        "One clear photo of the trainee alone. Quality gates say why a photo is refused. The "
        "photo is kept as evidence. A face that matches another trainee's is flagged for an "
        "auditor, and that trainee cannot study until it is resolved.",
        roles=(Role.TRAINEE,),
        body={"required": True, "content": {"multipart/form-data": {"schema": ref("FaceUpload")}}},
        responses={200: json_response("FaceEnrolled", "Enrolled.")},
        errors=(
            "consent_required",
            "invalid",
            "not_an_image",
            "image_too_large",
            "no_face",
            "multiple_faces",
            "face_too_small",
            "too_blurry",
            "too_dark",
            "too_bright",
        ),
    ),
    Endpoint(
        "get",
        "/api/v1/me/face",
        "Faces",
        "Whether the trainee's face is enrolled",
        roles=(Role.TRAINEE,),
        responses={200: json_response("FaceStatus", "The enrolment state.")},
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
    # Subsidy
    Endpoint(
        "get",
        "/api/v1/audit/reviews",
        "Subsidy",
        "The auditors' queue",
        "Enrolments waiting for an auditor, riskiest first. Trainees are masked.",
        roles=STAFF,
        parameters=(query("limit", integer(minimum=1, maximum=1000), "At most (200)."),),
        responses={200: json_response("ReviewQueue", "The queue.")},
        errors=("invalid",),
    ),
    Endpoint(
        "get",
        "/api/v1/audit/checks/{check_id}/image",
        "Subsidy",
        "A check's snapshot",
        "Redirects to a signed link to the frame closest to the reference, valid for "
        "`EVIDENCE_URL_TTL_S` seconds (120) and only for the caller: open it with the same "
        "token or session. Every call is logged in the audit log with the viewer and their "
        "address.",
        roles=STAFF,
        responses={
            302: {
                "description": "Found: follow `Location` (no-store).",
                "headers": {"Location": {"schema": string(format="uri-reference")}},
            }
        },
        errors=("no_image", "purged"),
    ),
    Endpoint(
        "post",
        "/api/v1/audit/enrollments/{enrollment_id}/decision",
        "Subsidy",
        "Approve or reject an enrolment's subsidy",
        "With a mandatory reason, logged in the audit log. Approval records the standard's "
        "amount and issues a certificate; rejection revokes any. With "
        "`REJECTION_NEEDS_SECOND_AUDITOR` a rejection is only proposed (reason "
        "`rejection_proposed`) until another auditor rejects too.",
        roles=STAFF,
        body=json_request("DecisionRequest", {"decision": "approve", "reason": "核对无误"}),
        responses={200: json_response("DecisionResult", "Decided.")},
        errors=(
            "reauth_required",
            "bad_credentials",
            "locked_out",
            "invalid",
            "not_complete",
            "already_eligible",
            "already_rejected",
            "rejected",
            "needs_another_auditor",
        ),
    ),
    Endpoint(
        "post",
        "/api/v1/audit/checks/{check_id}/clear",
        "Subsidy",
        "Clear a failed face check",
        "The auditor finds the trainee was the person in the picture after all. Voided time "
        "stays voided; the check no longer holds the subsidy back.",
        roles=STAFF,
        body=json_request("ReasonRequest", {"reason": "本人，光线过暗"}),
        responses={200: json_response("DecisionResult", "Cleared.")},
        errors=(
            "reauth_required",
            "bad_credentials",
            "locked_out",
            "invalid",
            "check_not_failed",
            "already_cleared",
        ),
    ),
    Endpoint(
        "post",
        "/api/v1/enrollments/{enrollment_id}/appeal",
        "Subsidy",
        "Appeal a rejection",
        "The enrolment goes back to the auditors' queue. One appeal per rejection.",
        roles=(Role.TRAINEE,),
        body=json_request("AppealRequest", {"message": "是我本人学习的"}),
        responses={201: json_response("AppealCreated", "Sent.")},
        errors=("invalid", "not_rejected", "already_appealed"),
    ),
    Endpoint(
        "get",
        "/api/v1/me/archive",
        "Subsidy",
        "The trainee's training e-archive",
        "Every enrolment with verified hours, checks, the subsidy and its decisions, and "
        "certificates. `?download=1` answers as an attachment.",
        roles=(Role.TRAINEE,),
        parameters=(query("download", string(enum=["1"]), "Answer as a file to save."),),
        responses={200: json_response("Archive", "The archive.")},
    ),
    # Certificates
    Endpoint(
        "get",
        "/api/v1/me/notifications",
        "Notifications",
        "The caller's inbox",
        "Newest first, `limit` (1-100, default 20) at a time; pass `next_before` as `before` "
        "for older ones. Texts are rendered in the caller's language when read.",
        roles=(),
        parameters=(
            query("before", integer(minimum=1), "The cursor of the next page."),
            query("limit", integer(minimum=1, maximum=100), "Items per page (default 20)."),
        ),
        responses={200: json_response("Inbox", "Notifications and the unread count.")},
        errors=("invalid",),
    ),
    Endpoint(
        "post",
        "/api/v1/me/notifications/{notification_id}/read",
        "Notifications",
        "Mark a notification read",
        roles=(),
        responses={200: json_response("NotificationRead", "Marked; the unread count after.")},
        errors=("notification_not_found",),
    ),
    Endpoint(
        "get",
        "/api/v1/certificates/{number}",
        "Certificates",
        "Verify a certificate",
        "Public: anyone holding a certificate number may check it. Answers whether it is "
        "valid or revoked, with the holder's name masked. The same answer is a page at "
        "`/verify/{number}`, which also checks the printed verification code (`?code=`).",
        responses={200: json_response("Certificate", "The certificate.")},
        errors=("certificate_not_found",),
    ),
    # This document
    Endpoint(
        "get",
        "/api/v1/openapi.json",
        "Documentation",
        "This API description",
        "OpenAPI 3.1. Readable as a page at `/api/docs`.",
        responses={200: json_response("OpenApiDocument", "The document.")},
    ),
]

TAGS = [
    {"name": "Accounts", "description": "Registration, tokens and the calling account."},
    {"name": "Occupations", "description": "The 2022 Occupational Classification (read-only)."},
    {"name": "Courses", "description": "Training platforms push courses in for review."},
    {"name": "Lessons", "description": "Lessons, their videos (resumable upload) and captions."},
    {"name": "Study", "description": "Trainees enrol, study lessons and earn credited time."},
    {"name": "Faces", "description": "The reference face and the face checks while studying."},
    {
        "name": "Subsidy",
        "description": "Subsidy decisions from evidence: the auditors' queue, decisions, "
        "appeals and the trainee's e-archive.",
    },
    {
        "name": "Certificates",
        "description": "Training certificates, issued when a course earns its subsidy.",
    },
    {
        "name": "Consent",
        "description": "The trainee's consent to face processing: read, give, withdraw.",
    },
    {
        "name": "Notifications",
        "description": "The signed-in person's inbox: checks, identity questions, decisions, "
        "certificates.",
    },
    {"name": "Documentation", "description": "This description of the API."},
]

OVERVIEW = """\
The JSON API of VeriSkill, the city labour bureau's vocational-training service. Training
platforms push courses and videos in; trainee and staff clients read their data.

Authentication: send `Authorization: Bearer <token>`. Platforms get tokens from the bureau;
trainees and staff get them from `POST /api/v1/auth/token`. A browser signed in to the site may
call the API with its session cookie instead, and must then send the page's CSRF token in the
`X-CSRFToken` header on every `POST`, `PUT`, `PATCH` and `DELETE`. A token that is sent but
wrong is always refused (`invalid_token`), never replaced by the session.

Errors: every failure answers `{"error": {"code", "message", ...}}` with a matching HTTP status.
Codes are stable; messages are for people and follow the caller's language: `Accept-Language`
picks Chinese (`zh`, the default) or English (`en`). Requests with a
JSON body need `Content-Type: application/json` and may be at most 1 MiB
(`MAX_REQUEST_BYTES`). Any endpoint may also answer `405 method_not_allowed` or
`500 internal`."""


def build_document() -> dict[str, Any]:
    tags = {tag["name"] for tag in TAGS}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        assert endpoint.tag in tags, f"undeclared tag {endpoint.tag}"
        assert endpoint.method not in paths.get(endpoint.path, {}), endpoint.path
        paths.setdefault(endpoint.path, {})[endpoint.method] = endpoint.operation()
    return {
        "openapi": "3.1.0",
        "info": {"title": "VeriSkill API", "version": "1", "description": OVERVIEW},
        "servers": [{"url": "/"}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {name: error_response(codes) for name, codes in STANDARD_ERRORS.items()},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (`vsk_...`); platforms act for their platform.",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "A browser signed in through the site's pages.",
                },
                "csrfToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRFToken",
                    "description": "The page's `csrf-token` meta value; session callers, "
                    "on unsafe methods.",
                },
            },
        },
    }


@cache
def _built() -> dict[str, Any]:
    return build_document()


def document() -> dict[str, Any]:
    """The document, built once per process; each caller gets its own copy."""
    return copy.deepcopy(_built())


@bp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(document())


# --- The page -----------------------------------------------------------------------------------


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in node and seen < 20:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node, seen = target, seen + 1
    return node


def has_type(schema: Schema, kind: str) -> bool:
    declared = schema.get("type")
    return declared == kind or (isinstance(declared, list) and kind in declared)


def type_label(schema: Schema, doc: dict[str, Any] | None = None) -> str:
    """A short type for people: `integer`, `string | null`, `array of Occupation`..."""
    if "$ref" in schema:
        target = resolve(doc, schema) if doc else {"properties": {}}
        if "properties" not in target:  # a named enum or scalar: say what it is
            return type_label(target, doc)
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(type_label(option, doc) for option in schema["anyOf"])
    if "const" in schema:
        return str(schema["const"]).lower()
    declared = schema.get("type", "any")
    labels = []
    for kind in declared if isinstance(declared, list) else [declared]:
        if kind == "array":
            labels.append(f"array of {type_label(schema.get('items', {}), doc)}")
        elif kind == "string" and "contentMediaType" in schema:
            labels.append(f"bytes ({schema['contentMediaType']})")
        elif kind == "string" and "format" in schema:
            labels.append(f"string ({schema['format']})")
        else:
            labels.append(kind)
    return " | ".join(labels)


CONSTRAINT_LABELS = {
    "minimum": "≥",
    "maximum": "≤",
    "minLength": "length ≥",
    "maxLength": "length ≤",
    "pattern": "pattern",
    "default": "default",
}


def constraints(schema: Schema) -> list[str]:
    notes = []
    if "enum" in schema:
        values = ("null" if value is None else f'"{value}"' for value in schema["enum"])
        notes.append("one of " + ", ".join(values))
    notes += [
        f"{label} {schema[key] if key == 'pattern' else json.dumps(schema[key])}"
        for key, label in CONSTRAINT_LABELS.items()
        if key in schema
    ]
    return notes


@dataclass
class Row:
    name: str
    type: str
    required: bool
    description: Markup
    notes: list[str]


def schema_rows(
    doc: dict[str, Any], schema: Schema, prefix: str = "", depth: int = 0
) -> Iterator[Row]:
    """Flatten a schema into one row per field, nested fields as `a.b` and `items[].c`."""
    schema = resolve(doc, schema)
    if not has_type(schema, "object") or "properties" not in schema:
        if not prefix:
            yield Row(
                "(body)", type_label(schema, doc), True, inline(schema.get("description", "")), []
            )
        return
    required = set(schema.get("required", []))
    for name, prop in schema["properties"].items():
        target = resolve(doc, prop)
        if "anyOf" in target:  # nullable: describe the non-null alternative
            target = resolve(doc, next(o for o in target["anyOf"] if o.get("type") != "null"))
        description = prop.get("description") or target.get("description", "")
        yield Row(
            prefix + name,
            type_label(prop, doc),
            name in required,
            inline(description),
            constraints(target),
        )
        if depth >= 6:
            continue
        if has_type(target, "object"):
            yield from schema_rows(doc, target, f"{prefix}{name}.", depth + 1)
        elif has_type(target, "array"):
            yield from schema_rows(doc, target.get("items", {}), f"{prefix}{name}[].", depth + 1)


def inline(text: str) -> Markup:
    """One line of prose for the page, `code` in backticks shown as code."""
    escaped = str(escape(" ".join(text.split())))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))  # noqa: S704 (escaped above)


def rich(text: str) -> list[tuple[str, Any]]:
    """Blocks of prose for the page: paragraphs, and lists made of `- ` lines."""
    blocks: list[tuple[str, Any]] = []
    for block in text.split("\n\n"):
        if block.lstrip().startswith("- "):
            items = re.split(r"(?m)^- ", block.strip())
            blocks.append(("list", [inline(item) for item in items if item.strip()]))
        elif block.strip():
            blocks.append(("p", inline(block)))
    return blocks


def error_codes_of(response: dict[str, Any]) -> list[str]:
    """The codes an error response names (see error_response); [] for other responses."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    if "allOf" not in schema:
        return []
    return schema["properties"]["error"]["properties"]["code"]["enum"]


def page_response(doc: dict[str, Any], status: str, raw: dict[str, Any]) -> dict[str, Any]:
    response = resolve(doc, raw)
    codes = error_codes_of(response)
    bodies = [
        {
            "media_type": kind,
            "schema": type_label(media["schema"]),
            "rows": [row for row in schema_rows(doc, media["schema"]) if row.name != "(body)"],
        }
        for kind, media in response.get("content", {}).items()
    ]
    return {
        "status": status,
        "summary": inline(response["description"].split("\n\n")[0]),
        "codes": [(code, inline(ERRORS[code][1])) for code in codes],
        "bodies": [] if codes else bodies,
        "headers": list(response.get("headers", {})),
    }


def page_operation(doc: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> dict:
    security = op.get("security", [])
    return {
        "id": op["operationId"],
        "method": method.upper(),
        "path": path,
        "summary": op["summary"],
        "description": rich(op.get("description", "")),
        "public": not security,
        "roles": security[0]["bearer"] if security else [],
        "session": any("session" in option for option in security),
        "csrf": any("csrfToken" in option for option in security),
        "parameters": [
            {
                "name": parameter["name"],
                "in": parameter["in"],
                "required": parameter.get("required", False),
                "type": type_label(parameter["schema"], doc),
                "notes": constraints(parameter["schema"]),
                "description": inline(parameter.get("description", "")),
            }
            for parameter in op.get("parameters", [])
        ],
        "bodies": [
            {"media_type": kind, "rows": list(schema_rows(doc, media["schema"]))}
            for kind, media in op.get("requestBody", {}).get("content", {}).items()
        ],
        "responses": [page_response(doc, *item) for item in op["responses"].items()],
    }


def page_groups(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The document arranged for the template: tags in order, each with its operations."""
    groups = {tag["name"]: {**tag, "operations": []} for tag in doc["tags"]}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            groups[op["tags"][0]]["operations"].append(page_operation(doc, path, method, op))
    return [group for group in groups.values() if group["operations"]]


# The page's own words, in the reader's language. The reference itself (summaries, field
# descriptions, codes) stays in English, the language of the OpenAPI document, marked lang="en".
TAG_TEXT = {
    "Accounts": (_l("Accounts"), _l("Registration, tokens and the calling account.")),
    "Occupations": (
        _l("Occupations"),
        _l("The 2022 Occupational Classification (read-only)."),
    ),
    "Courses": (_l("Courses"), _l("Training platforms push courses in for review.")),
    "Lessons": (_l("Lessons"), _l("Lessons, their videos (resumable upload) and captions.")),
    "Study": (_l("Study"), _l("Trainees enrol, study lessons and earn credited time.")),
    "Faces": (_l("Faces"), _l("The reference face and the face checks while studying.")),
    "Subsidy": (
        _l("Subsidy"),
        _l(
            "Subsidy decisions from evidence: the auditors' queue, decisions, appeals and the "
            "trainee's e-archive."
        ),
    ),
    "Certificates": (
        _l("Certificates"),
        _l("Training certificates, issued when a course earns its subsidy."),
    ),
    "Consent": (
        _l("Consent"),
        _l("The trainee's consent to face processing: read, give, withdraw."),
    ),
    "Notifications": (
        _l("Notifications"),
        _l("The signed-in person's inbox: checks, identity questions, decisions, certificates."),
    ),
    "Documentation": (_l("Documentation"), _l("This description of the API.")),
}

PARAMETER_PLACES = {
    "path": _l("path"),
    "query": _l("query"),
    "header": _l("header"),
    "cookie": _l("cookie"),
}

# Paragraphs of the page's introduction: each a translated sentence whose %(name)s places
# take what a program sends verbatim, shown as code.
PAGE_OVERVIEW: list[tuple[Any, dict[str, str]]] = [
    (
        _l(
            "The JSON API of VeriSkill, the city labour bureau's vocational-training service. "
            "Training platforms push courses and videos in; trainee and staff clients read "
            "their data."
        ),
        {},
    ),
    (
        _l(
            "Authentication: send %(bearer)s. Platforms get tokens from the bureau; trainees "
            "and staff get them from %(token)s. A browser signed in to the site may call the "
            "API with its session cookie instead, and must then send the page's CSRF token in "
            "the %(csrf)s header with every request that changes something. A token that is "
            "sent but wrong is always refused (%(invalid)s), never replaced by the session."
        ),
        {
            "bearer": "Authorization: Bearer <token>",
            "token": "POST /api/v1/auth/token",
            "csrf": "X-CSRFToken",
            "invalid": "invalid_token",
        },
    ),
    (
        _l(
            "Errors: every failure answers %(body)s with a matching HTTP status. Codes are "
            "stable; messages are for people and follow the %(header)s header: %(zh)s for "
            "Chinese (the default) or %(en)s for English. Requests with a JSON body need "
            "%(type)s and may be at most 1 MiB."
        ),
        {
            "body": '{"error": {"code", "message", ...}}',
            "header": "Accept-Language",
            "zh": "zh",
            "en": "en",
            "type": "Content-Type: application/json",
        },
    ),
    (
        _l(
            "The reference below (summaries, fields, meanings of error codes) is in English, "
            "the language of the OpenAPI document; names of fields, codes and values are what "
            "your program sends and receives."
        ),
        {},
    ),
]


def overview_paragraphs() -> list[Markup]:
    """The introduction in the reader's language, verbatim parts as code."""
    return [
        escape(str(text))
        % {name: Markup("<code>%s</code>") % value for name, value in code.items()}
        for text, code in PAGE_OVERVIEW
    ]


@bp.get("/api/docs")
def docs_page():
    doc = document()
    errors = sorted(ERRORS.items(), key=lambda item: (item[1][0], item[0]))
    return render_template(
        "api_docs.html",
        doc=doc,
        overview=overview_paragraphs(),
        groups=page_groups(doc),
        tag_text=TAG_TEXT,
        places=PARAMETER_PLACES,
        error_rows=list(schema_rows(doc, ref("Error"))),
        error_codes=[(status, code, inline(meaning)) for code, (status, meaning) in errors],
    )
