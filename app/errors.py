"""Domain errors and the one place that turns them, and HTTP errors, into responses.

The JSON API always answers `{"error": {"code", "message", ...}}`; pages render a friendly
error in the visitor's language. Codes are stable and machine-readable; messages are for people.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db
from media_pipeline.storage import StorageFull, StorageUnavailable

log = logging.getLogger(__name__)


class AppError(Exception):
    """An error a user can act on. Subclasses fix the HTTP status and a default code; every
    code, with its status, is registered in app/error_codes.py (tests/test_error_codes.py)."""

    status = 400
    code = "bad_request"
    default_message: Any = _l("The request could not be processed.")

    def __init__(
        self,
        message: Any = None,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra
        super().__init__(str(self.message))

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.fields:
            body["fields"] = {name: str(text) for name, text in self.fields.items()}
        body.update(self.extra)
        return body


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    default_message = _l("Sign in first, or send a valid API token.")


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    default_message = _l("You are not allowed to do this.")


class NotFound(AppError):
    status = 404
    code = "not_found"
    default_message = _l("Nothing was found at this address.")


class Conflict(AppError):
    status = 409
    code = "conflict"
    default_message = _l("This conflicts with what is already recorded.")


class PayloadTooLarge(AppError):
    status = 413
    code = "too_large"
    default_message = _l("The request body is too large.")


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"


class Invalid(AppError):
    """Input that parsed but broke a rule; `fields` names each bad field."""

    status = 422
    code = "invalid"
    default_message = _l("Some fields are not valid.")


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"
    default_message = _l("Too many attempts. Try again later.")


class Overloaded(AppError):
    """The server sheds work it cannot do in time; the caller sends it again after the
    Retry-After header's seconds (see app/study/api.py, overload)."""

    status = 503
    code = "overloaded"
    default_message = _l("The server is busy. Nothing was lost: this is sent again in a moment.")


# Stable codes and human messages for errors raised by Flask and Werkzeug themselves.
HTTP_CODES: dict[int, tuple[str, Any]] = {
    400: ("bad_request", _l("The request could not be understood.")),
    401: ("unauthorized", Unauthorized.default_message),
    403: ("forbidden", Forbidden.default_message),
    404: ("not_found", NotFound.default_message),
    405: ("method_not_allowed", _l("This address does not accept that method.")),
    413: ("too_large", _l("The request body is too large.")),
    415: ("unsupported_media_type", _l("This content type is not accepted here.")),
    429: ("too_many_requests", TooManyRequests.default_message),
    500: ("internal", _l("Something went wrong on our side. It has been logged.")),
}


# The object store is out of room or out of reach: nothing the caller did, so try again later.
STORAGE_FULL = _l("Storage is full at the moment. Please try again later; we have been alerted.")
STORAGE_UNAVAILABLE = _l("Storage cannot be reached at the moment. Please try again shortly.")


def wants_json() -> bool:
    return request.path.startswith("/api/")


def render_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
    response: Response | str
    if wants_json():
        response = jsonify({"error": body})
    else:
        response = render_template("error.html", status=status, error=body)
    return response, status, headers or {}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def handle_app_error(error: AppError):
        db.session.rollback()
        return render_error(error.status, error.to_dict(), error.headers)

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError):
        db.session.rollback()
        message = _l("The form expired or was sent from elsewhere. Reload the page and try again.")
        return render_error(400, {"code": "csrf_failed", "message": str(message)})

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        db.session.rollback()
        status = error.code or 500
        code, message = HTTP_CODES.get(status, ("http_error", error.description))
        # Werkzeug's own headers, such as Allow on a 405, go out with our body.
        headers = {
            name: value for name, value in error.get_headers() if name.lower() != "content-type"
        }
        return render_error(status, {"code": code, "message": str(message)}, headers)

    @app.errorhandler(StorageFull)
    def handle_storage_full(error: StorageFull):
        db.session.rollback()
        log.error("storage full on %s %s: %s", request.method, request.path, error)
        return render_error(507, {"code": "storage_full", "message": str(STORAGE_FULL)})

    @app.errorhandler(StorageUnavailable)
    def handle_storage_unavailable(error: StorageUnavailable):
        db.session.rollback()
        log.error("storage unavailable on %s %s: %s", request.method, request.path, error)
        body = {"code": "storage_unavailable", "message": str(STORAGE_UNAVAILABLE)}
        return render_error(503, body, {"Retry-After": "60"})

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        code, message = HTTP_CODES[500]
        return render_error(500, {"code": code, "message": str(message)})
