"""Small request helpers shared by every JSON endpoint."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l

from app.errors import BadRequest, Invalid, UnsupportedMediaType


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a clear 4xx saying what is wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType(_l("Send the body as JSON (Content-Type: application/json)."))
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(_l("The body is not valid JSON."), code="malformed_json") from None
    if not isinstance(body, dict):
        raise BadRequest(_l("The body must be a JSON object."), code="malformed_json")
    return body


def int_arg(name: str, default: int, *, low: int, high: int) -> int:
    """A whole-number query argument within [low, high]."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Invalid(
            fields={name: _l("Use a whole number from %(low)d to %(high)d.", low=low, high=high)}
        )
    return value
