"""The API document as a page for integrators (`/api/docs`): the same operations, laid out.

The page's own words are translated; the reference itself (summaries, field descriptions,
meanings of codes) stays in English, the language of the OpenAPI document, marked lang="en".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from app.error_codes import ERRORS, api_codes
from app.openapi.document import TAGS
from app.openapi.spec import Schema, ref


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


# A longer enum (the error codes) is a table of its own on the page, not a note in a cell.
MAX_LISTED_VALUES = 30


def constraints(schema: Schema) -> list[str]:
    notes = []
    if len(schema.get("enum", ())) > MAX_LISTED_VALUES:
        notes.append(f"one of {len(schema['enum'])} values")
    elif "enum" in schema:
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
        "codes": [(code, inline(ERRORS[code].meaning)) for code in codes],
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


# The page's own words, in the reader's language (the tags' are in app/openapi/document.py).
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


def context(doc: dict[str, Any]) -> dict[str, Any]:
    """What templates/api_docs.html is rendered with."""
    codes = sorted(api_codes(), key=lambda code: (ERRORS[code].status, code))
    return {
        "doc": doc,
        "overview": overview_paragraphs(),
        "groups": page_groups(doc),
        "tag_text": {tag.name: (tag.title, tag.description) for tag in TAGS},
        "places": PARAMETER_PLACES,
        "error_rows": list(schema_rows(doc, ref("Error"))),
        "error_codes": [
            (ERRORS[code].status, code, inline(ERRORS[code].meaning)) for code in codes
        ],
    }
