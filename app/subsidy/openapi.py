"""The Subsidy operations of the API document: the auditors' desk, appeals, the e-archive."""

from __future__ import annotations

from app.courses.models import CourseLevel
from app.identity.models import Role
from app.openapi.spec import (
    STAFF,
    Endpoint,
    Schema,
    array,
    integer,
    json_request,
    json_response,
    nullable,
    obj,
    query,
    ref,
    string,
)
from app.subsidy.models import Action
from app.subsidy.rules import Status as SubsidyStatus
from app.subsidy.service import REASON_MESSAGES
from app.verification.openapi import SCORE

SCHEMAS: dict[str, Schema] = {
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
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "get",
        "/api/v1/audit/reviews",
        "Subsidy",
        "The auditors' queue",
        "Enrolments waiting for an auditor, riskiest first, then the longest waiting: one "
        "stable order, so `offset` pages through it. Trainees are masked.",
        roles=STAFF,
        parameters=(
            query("limit", integer(minimum=1, maximum=1000), "At most (200)."),
            query("offset", integer(minimum=0, maximum=10_000_000), "Skip this many (0)."),
        ),
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
        storage=True,
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
]
