"""JSON API: anyone may verify a certificate by its number."""

from __future__ import annotations

from flask import jsonify

from app.certificates import bp, service


@bp.get("/api/v1/certificates/<number>")
def api_certificate(number: str):
    certificate = service.lookup(number, public=True)
    response = jsonify(service.public_json(certificate))
    response.headers["Cache-Control"] = "no-store"
    return response
