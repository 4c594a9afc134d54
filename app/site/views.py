"""Home page, language switch, health check."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, jsonify, redirect, render_template, request, url_for

from app.extensions import db, real_app
from app.i18n import LANG_COOKIE
from app.site import bp
from app.urls import safe_next


@bp.get("/")
def home():
    return render_template("site/home.html")


@bp.get("/lang/<code>")
def switch_language(code: str):
    """Remember the chosen language for a year and go back to where the visitor was."""
    target = safe_next(request.args.get("next")) or url_for("site.home")
    response = redirect(target)
    if code in current_app.config["LANGUAGES"]:
        response.set_cookie(
            LANG_COOKIE,
            code,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
        )
    return response


@bp.get("/healthz")
def health():
    """Liveness, for load balancers: the app answers and the database is reachable."""
    db.session.execute(sa.select(1))
    return jsonify({"status": "ok"})


@bp.get("/healthz/ready")
def ready():
    """Readiness: 200 when the database, Redis, storage and the face model answer, else 503
    naming what failed. Open to load balancers; only the operator (as for /metrics) sees the
    error messages, which may name hosts."""
    from app.observability import health as checks
    from app.observability.metrics import operator_request

    app = real_app()
    results = checks.readiness(app)
    detail = operator_request(app, request)
    ready = all(result.status != "failed" for result in results)
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {result.name: result.json(detail=detail) for result in results},
    }
    return jsonify(body), 200 if ready else 503, {"Cache-Control": "no-store"}
