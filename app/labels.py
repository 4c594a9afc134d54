"""What people read for a stored code: the one table of status and reason labels.

Every state a page, a flash or an API message names (a course's status, a check's result, a
subsidy reason...) is stored as a stable English code. People never see the code: they see
`label(code)`, translated into their language. A code whose meaning depends on what it
describes (a *failed* lesson was not processed, a *failed* check was not passed) has a label of
its own under that kind. tests/test_labels.py fails on any enum value without a label.
"""

from __future__ import annotations

import logging
from typing import Any

from flask_babel import lazy_gettext as _l

from app.courses.models import LEVEL_LABELS

log = logging.getLogger(__name__)

LABELS: dict[str, Any] = {
    # courses (CourseStatus)
    "draft": _l("Draft"),
    "in_review": _l("In review"),
    "published": _l("Published"),
    "rejected": _l("Rejected"),
    "withdrawn": _l("Withdrawn"),
    # lessons (LessonStatus)
    "awaiting_upload": _l("Awaiting upload"),
    "uploading": _l("Uploading"),
    "queued": _l("Queued"),
    "processing": _l("Processing"),
    "ready": _l("Ready"),
    "failed": _l("Failed"),
    # why a lesson's video was refused (media_pipeline.video, the pipeline)
    "not_a_video": _l("The file is not a video"),
    "no_video_stream": _l("The file has no picture"),
    "unsupported_codec": _l("The video format is not supported"),
    "truncated": _l("The file is incomplete"),
    "no_duration": _l("The video's length cannot be read"),
    "too_long": _l("The video is too long"),
    "timeout": _l("Processing took too long"),
    "transcode_failed": _l("Converting the video failed"),
    "poster_failed": _l("The cover picture could not be made"),
    "invalid_captions": _l("The captions could not be read"),
    "storage_full": _l("Storage was full; it will be tried again"),
    "storage_unavailable": _l("Storage could not be reached; it will be tried again"),
    "processing_error": _l("Processing stopped on our side; it will be tried again"),
    # jobs (JobStatus)
    "running": _l("Running"),
    "done": _l("Finished"),
    # periodic task runs (RunOutcome; "running" and "failed" as above)
    "ok": _l("Succeeded"),
    # accounts (Role, Sex)
    "trainee": _l("Trainee"),
    "platform": _l("Training platform"),
    "auditor": _l("Auditor"),
    "admin": _l("Administrator"),
    "district_officer": _l("District officer"),
    # districts (DistrictKind)
    "district": _l("District"),
    "county": _l("County"),
    "zone": _l("Management zone"),
    # key groups (TraineeGroupKind) and where the fact came from (GroupSource)
    "poor_labourer": _l("Registered poor labourer"),
    "migrant_worker": _l("Migrant worker"),
    "unemployed": _l("Registered unemployed"),
    "graduate": _l("College graduate"),
    "veteran": _l("Veteran"),
    "enterprise_staff": _l("Enterprise employee"),
    "disabled": _l("Person with a disability"),
    "self_declared": _l("Declared by the trainee"),
    "staff_verified": _l("Verified by the bureau"),
    "imported": _l("From another bureau system"),
    "male": _l("Male"),
    "female": _l("Female"),
    # SMS codes (CodePurpose)
    "password_reset": _l("Password recovery"),
    "register": _l("Registration"),
    # platforms (PlatformStatus) and tokens
    "active": _l("Active"),
    "suspended": _l("Suspended"),
    "expired": _l("Expired"),
    # study sessions (SessionEnd)
    "superseded": _l("Continued on another device"),
    "closed": _l("Ended by the player"),
    # subsidy (rules.Status)
    "in_progress": _l("In progress"),
    "eligible": _l("Eligible for the subsidy"),
    "needs_review": _l("Waiting for an auditor"),
    "ineligible": _l("Not eligible"),
    # decisions (Action)
    "approve": _l("Approved by an auditor"),
    "reject": _l("Rejected by an auditor"),
    "clear_check": _l("Failed check cleared by an auditor"),
    # reference faces (FaceStatus)
    "pending_approval": _l("Waiting for staff approval"),
    "replaced": _l("Replaced by a newer photo"),
    # identity flags (FlagStatus) and their codes
    "open": _l("Open"),
    "cleared": _l("Cleared: two different people"),
    "confirmed": _l("Confirmed: one person"),
    "duplicate_identity": _l("Duplicate identity"),
    "possible_duplicate": _l("Possible duplicate"),
    # face checks (CheckKind, CheckStatus, Check.code, AnswerStatus)
    "sign_in": _l("Check at the start of a sitting"),
    "random": _l("Check at a random moment"),
    "closing": _l("Check at the end of a lesson"),
    "pending": _l("Waiting for an answer"),
    "passed": _l("Passed"),
    "cancelled": _l("Cancelled: the sitting ended"),
    "mismatch": _l("Someone else's face"),
    "replay": _l("Replayed picture"),
    "liveness_failed": _l("Not live"),
    "multiple_faces": _l("Several faces"),
    "no_face": _l("No face"),
    "not_judged": _l("Could not be judged"),
    "session_ended": _l("The sitting ended first"),
    "judged": _l("Judged"),
    "abandoned": _l("Given up by the worker"),
    # face images (EvidenceKind, Evidence.result)
    "reference": _l("Reference photo"),
    "snapshot": _l("Snapshot"),
    "match": _l("Same person"),
    "no_match": _l("Different person"),
    "enrolled": _l("Enrolled as the reference"),
    "face_too_small": _l("Face too small"),
    "too_blurry": _l("Blurred"),
    "too_dark": _l("Too dark"),
    "too_bright": _l("Too bright"),
    "not_an_image": _l("Not a photo"),
    "image_too_large": _l("Photo too large"),
    # subsidy reasons (rules.assess)
    "complete": _l("Course complete"),
    "lessons_incomplete": _l("Lessons not complete"),
    "checks_passed": _l("Face checks passed"),
    "check_cleared": _l("Failed check cleared"),
    "check_mismatch": _l("Someone else's face"),
    "check_replay": _l("Replayed picture"),
    "check_liveness_failed": _l("Not live"),
    "check_multiple_faces": _l("Several faces"),
    "check_no_face": _l("No face"),
    "check_expired": _l("Check missed"),
    "spot_check": _l("Spot check"),
    "appealed": _l("Appeal"),
    "rejection_proposed": _l("Rejection to confirm"),
    "approved": _l("Approved by an auditor"),
    "skipped_ahead": _l("Skipped ahead"),
    "no_standard": _l("No subsidy standard set"),
    # certificates: why one was revoked
    "subsidy_rejected": _l("Subsidy rejected"),
    "under_review": _l("Under review again"),
    "not_complete": _l("No longer complete"),
    # study time held back (learning.rules.Reason)
    "first_heartbeat": _l("Playback started"),
    "gap": _l("Connection lost"),
    "hidden": _l("Page in the background"),
    "paused": _l("Video paused"),
    "no_progress": _l("Video did not move"),
    "ahead_of_furthest": _l("Skipped ahead"),
    "too_fast": _l("Played too fast"),
    "capped_interval": _l("Reports too far apart"),
    "lesson_full": _l("Lesson time already complete"),
    "invalid_position": _l("Impossible position"),
    "repeated": _l("Report received twice"),
    "check_pending": _l("A face check was waiting"),
    "already_credited": _l("Part already counted"),
    # course levels (CourseLevel)
    **{level.value: text for level, text in LEVEL_LABELS.items()},
}

# Where one code means different things for different kinds of record.
BY_KIND: dict[str, dict[str, Any]] = {
    "lesson": {"failed": _l("Processing failed")},
    "job": {"failed": _l("Failed"), "queued": _l("Queued")},
    "check": {"failed": _l("Not passed"), "expired": _l("Not answered in time")},
    "face": {"active": _l("Photo in use"), "rejected": _l("Not approved")},
    "action": {"eligible": _l("Eligible under the rules")},
    "answer": {"queued": _l("Waiting for a worker")},
}


def label(value: Any, kind: str | None = None) -> str:
    """The translated label of a stored code (an enum member or its value).

    An unknown code is shown as it is, and logged: the page stays usable, and the sweep test
    and tests/test_labels.py make sure it does not happen.
    """
    if value is None:
        return ""
    code = str(getattr(value, "value", value))
    text = BY_KIND.get(kind or "", {}).get(code)
    if text is None:
        text = LABELS.get(code)
    if text is None:
        log.warning("no label for code %r (kind %r)", code, kind)
        return code
    return str(text)


def template_labels() -> dict[str, Any]:
    """For the templates: `label(code)` or `label(code, kind)`."""
    return {"label": label}
