"""The whole OpenAPI 3.1 document, assembled from each domain's `openapi.py`.

Each domain describes its own operations beside its routes (DOMAINS below names the modules, in
the order the document lists them); this module adds what they share: the error body and its
`ErrorCode` enum from app/error_codes.py, the tags (one table, also the page's headings), the
overview and the security schemes. tests/test_openapi.py fails when the URL map and the
document disagree, and checks real responses against the schemas.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from app.error_codes import ERRORS, Scope, api_codes
from app.learning.models import SessionEnd
from app.openapi.spec import (
    STANDARD_ERRORS,
    Endpoint,
    Schema,
    array,
    error_response,
    integer,
    json_response,
    nullable,
    obj,
    one_of,
    ref,
    string,
)

# The modules describing the API, each beside the routes it describes (app/<domain>/api.py).
DOMAINS = (
    "app.identity.openapi",
    "app.bureau.openapi",
    "app.catalog.openapi",
    "app.courses.openapi",
    "app.learning.openapi",
    "app.consent.openapi",
    "app.verification.openapi",
    "app.study.openapi",
    "app.subsidy.openapi",
    "app.notifications.openapi",
    "app.certificates.openapi",
    "app.stats.openapi",
)


@dataclass(frozen=True)
class Tag:
    """A group of operations. Its words are translated for the page; the document, written
    for integrators in English, takes them in English."""

    name: str
    title: Any
    description: Any


TAGS = (
    Tag("Accounts", _l("Accounts"), _l("Registration, tokens and the calling account.")),
    Tag(
        "Occupations",
        _l("Occupations"),
        _l("The 2022 Occupational Classification (read-only)."),
    ),
    Tag("Districts", _l("Districts"), _l("The city's districts, which records are filed by.")),
    Tag("Courses", _l("Courses"), _l("Training platforms push courses in for review.")),
    Tag("Lessons", _l("Lessons"), _l("Lessons, their videos (resumable upload) and captions.")),
    Tag("Study", _l("Study"), _l("Trainees enrol, study lessons and earn credited time.")),
    Tag("Faces", _l("Faces"), _l("The reference face and the face checks while studying.")),
    Tag(
        "Subsidy",
        _l("Subsidy"),
        _l(
            "Subsidy decisions from evidence: the auditors' queue, decisions, appeals and the "
            "trainee's e-archive."
        ),
    ),
    Tag(
        "Certificates",
        _l("Certificates"),
        _l("Training certificates, issued when a course earns its subsidy."),
    ),
    Tag(
        "Consent",
        _l("Consent"),
        _l("The trainee's consent to face processing: read, give, withdraw."),
    ),
    Tag(
        "Notifications",
        _l("Notifications"),
        _l("The signed-in person's inbox: checks, identity questions, decisions, certificates."),
    ),
    Tag("Statistics", _l("Statistics"), _l("The bureau's figures under published definitions.")),
    Tag("Documentation", _l("Documentation"), _l("This description of the API.")),
)

SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {"error": ref("ErrorBody")},
        description="Every failure of the JSON API has this shape, with an HTTP status to match.",
        closed=False,  # `already_enrolled` also names the enrolment at the top level
    ),
    "ErrorBody": obj(
        {
            "code": {
                **ref("ErrorCode"),
                "description": "Stable, machine-readable reason: branch on this, never on "
                "`message`.",
            },
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
    "ErrorCode": string(
        "Every code the JSON API answers with (app/error_codes.py); each operation names the "
        "ones it can answer, with their status.",
        enum=api_codes(),
    ),
    "OpenApiDocument": {"type": "object", "description": "This document."},
}

ENDPOINTS = [
    Endpoint(
        "get",
        "/api/v1/openapi.json",
        "Documentation",
        "This API description",
        "OpenAPI 3.1. Readable as a page at `/api/docs`.",
        responses={200: json_response("OpenApiDocument", "The document.")},
    ),
]


def _anywhere() -> str:
    codes = [f"`{ERRORS[c].status} {c}`" for c, e in ERRORS.items() if e.scope is Scope.ANY]
    return " or ".join(codes)


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
(`MAX_REQUEST_BYTES`). Any endpoint may also answer """
OVERVIEW += _anywhere() + "."


def collect() -> tuple[dict[str, Schema], list[Endpoint]]:
    """Every domain's schemas and endpoints, with this module's own; a name twice is a bug."""
    schemas: dict[str, Schema] = {}
    endpoints: list[Endpoint] = []
    for module_name in DOMAINS:
        module = importlib.import_module(module_name)
        for name, schema in module.SCHEMAS.items():
            assert name not in schemas and name not in SCHEMAS, f"schema {name} named twice"
            schemas[name] = schema
        endpoints += module.ENDPOINTS
    return {**SCHEMAS, **schemas}, [*endpoints, *ENDPOINTS]


def build_document() -> dict[str, Any]:
    schemas, endpoints = collect()
    with force_locale("en"):  # the document speaks English, whatever the caller's language
        tags = [{"name": tag.name, "description": str(tag.description)} for tag in TAGS]
    names = {tag.name for tag in TAGS}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        assert endpoint.tag in names, f"undeclared tag {endpoint.tag}"
        assert endpoint.method not in paths.get(endpoint.path, {}), endpoint.path
        paths.setdefault(endpoint.path, {})[endpoint.method] = endpoint.operation()
    return {
        "openapi": "3.1.0",
        "info": {"title": "VeriSkill API", "version": "1", "description": OVERVIEW},
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
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
