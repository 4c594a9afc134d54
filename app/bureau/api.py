"""The district list as JSON, for platforms and other bureau systems that file records by it."""

from __future__ import annotations

from flask import jsonify

from app.bureau import bp, service


@bp.get("/api/v1/districts")
def api_districts():
    return jsonify(
        {
            "items": [
                {"code": d.code, "name": d.name, "name_en": d.name_en, "kind": d.kind.value}
                for d in service.districts()
            ]
        }
    )
