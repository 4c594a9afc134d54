"""The OpenAPI 3.1 description of the JSON API, served as JSON and as a page for integrators.

The document is plain Python data, read and reviewed like code: each domain describes its
operations in `app/<domain>/openapi.py`, beside the routes in `app/<domain>/api.py`, with the
builders of app/openapi/spec.py; app/openapi/document.py assembles them with the error codes of
app/error_codes.py; app/openapi/page.py lays the document out for people.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from flask import Blueprint, jsonify, render_template

from app.openapi.document import build_document
from app.openapi.page import context, error_codes_of, resolve

bp = Blueprint("openapi", __name__)

__all__ = ["bp", "build_document", "document", "error_codes_of", "resolve"]


@cache
def _built() -> dict[str, Any]:
    return build_document()


def document() -> dict[str, Any]:
    """The document, built once per process; each caller gets its own copy."""
    return copy.deepcopy(_built())


@bp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(document())


@bp.get("/api/docs")
def docs_page():
    return render_template("api_docs.html", **context(document()))
