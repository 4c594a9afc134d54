"""JSON endpoints for the occupational classification."""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import lazy_gettext as _l

from app.catalog import bp, service
from app.errors import Invalid, NotFound
from app.http import int_arg


@bp.get("/api/v1/occupations")
def api_occupations():
    q = request.args.get("q", "")
    if len(q) > 100:
        raise Invalid(fields={"q": _l("Search with at most 100 characters.")})
    level = int_arg("level", 0, low=0, high=4) or None
    parent = request.args.get("parent") or None
    page = int_arg("page", 1, low=1, high=10_000)
    per_page = int_arg("per_page", 20, low=1, high=100)
    result = service.search(q, level=level, parent=parent, page=page, per_page=per_page)
    return jsonify({"items": [occ.to_dict() for occ in result.items], "total": result.total})


@bp.get("/api/v1/occupations/<code>")
def api_occupation(code: str):
    occupation = service.get(code)
    if occupation is None:
        raise NotFound(_l("No occupation has this code."))
    body = occupation.to_dict()
    body["children"] = [child.to_dict() for child in service.children(code)]
    return jsonify(body)
