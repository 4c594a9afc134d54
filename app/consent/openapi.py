"""The Consent operations of the API document: the trainee's consent to face processing."""

from __future__ import annotations

from app.identity.models import Role
from app.openapi.spec import (
    Endpoint,
    Schema,
    array,
    integer,
    json_request,
    json_response,
    obj,
    one_of,
    ref,
    string,
)

SCHEMAS: dict[str, Schema] = {
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
}

ENDPOINTS: list[Endpoint] = [
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
]
