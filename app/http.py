"""Small request helpers shared by every JSON endpoint."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import AppError, BadRequest, Invalid, UnsupportedMediaType
from app.inputs import parse_json


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a clear 4xx saying what is wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType(_l("Send the body as JSON (Content-Type: application/json)."))
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    # Depth, NaN and every string's characters are checked there, in one place for all routes.
    body = parse_json(raw)
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


def uploaded_files(
    single: str, many: str, *, max_files: int, max_bytes: int, too_large: AppError
) -> list[bytes]:
    """The multipart upload(s): one file in ``single``, or several in repeated ``many`` fields.

    The body may hold ``max_files`` files of ``max_bytes`` each (and an envelope); a larger one
    is refused with ``too_large``. Each file is read, then its temporary spool released.
    """
    request.max_content_length = max_bytes * (max_files + 1)
    try:
        files = request.files.getlist(many) or request.files.getlist(single)
    except RequestEntityTooLarge:
        raise too_large from None
    if len(files) > max_files:
        raise Invalid(fields={many: _l("At most %(n)d files.", n=max_files)})
    contents = []
    for file in files:
        contents.append(file.read())
        file.close()
    return contents
