"""What each domain's `openapi.py` describes its operations with: schema builders and Endpoint.

A domain module (e.g. app/study/openapi.py, beside app/study/api.py) holds SCHEMAS, the bodies
its routes read and write, and ENDPOINTS, one `Endpoint` per route naming its schemas and the
error codes it can answer. Authentication, CSRF, JSON-body errors, storage errors and path
parameters are added here from those facts; every code's status and meaning come from the one
registry, app/error_codes.py. Nothing here imports a domain, so every domain can import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from app.error_codes import ERRORS
from app.identity.models import Role
from app.inputs import MAX_ID

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


# --- Error responses, from the registry ---------------------------------------------------------

# Shared responses, used wherever an operation answers exactly these codes for a status.
STANDARD_ERRORS: dict[str, tuple[str, ...]] = {
    "Unauthorized": ("invalid_token", "unauthorized"),
    "Forbidden": ("forbidden", "password_change_required"),
    "NotFound": ("not_found",),
    "TooLarge": ("too_large",),
    "UnsupportedMediaType": ("unsupported_media_type",),
    "Invalid": ("invalid",),
}

# Where the standard reason phrase would say less to an integrator.
STATUS_TEXT = {
    401: "Not authenticated",
    403: "Not allowed",
    413: "Too large",
    422: "Not valid",
}


def status_text(status: int) -> str:
    return STATUS_TEXT.get(status) or HTTPStatus(status).phrase.capitalize()


def error_response(codes: Iterable[str]) -> dict[str, Any]:
    """One status's error response: its codes with their meanings, the body limited to them."""
    codes = sorted(codes)
    statuses = {ERRORS[code].status for code in codes}
    assert len(statuses) == 1, f"codes of different statuses in one response: {codes}"
    lines = [f"- `{code}`: {ERRORS[code].meaning}" for code in codes]
    response: dict[str, Any] = {
        "description": status_text(statuses.pop()) + ".\n\n" + "\n".join(lines),
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [ref("Error")],
                    "properties": {"error": {"properties": {"code": {"enum": codes}}}},
                }
            }
        },
    }
    if any(ERRORS[code].retry_after for code in codes):
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
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
    # Reads or writes the object store, which may be full or out of reach.
    storage: bool = False
    # Answers an account whose password staff reset, before it chooses a new one
    # (app/identity/auth.py, API_OPEN_WITH_TEMPORARY); every other signed-in call refuses it.
    temporary_password: bool = False

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
        if self.storage:
            codes |= {"storage_full", "storage_unavailable"}
        if self.roles is not None:
            codes |= {"unauthorized", "invalid_token"}
            if self.roles:
                codes.add("forbidden")
            if not self.temporary_password:
                codes.add("password_change_required")
            if self.method in UNSAFE and self.roles != (Role.PLATFORM,):
                codes.add("csrf_failed")
        if self.body and "application/json" in self.body["content"]:
            codes |= set(JSON_BODY_ERRORS)
        if "{" in self.path:
            codes.add("not_found")
        unregistered = sorted(codes - ERRORS.keys())
        assert not unregistered, (
            f"{self.method} {self.path}: not in app/error_codes.py: {unregistered}"
        )
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
            by_status.setdefault(ERRORS[code].status, set()).add(code)
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
