"""Home page, language switch, health check."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, jsonify, redirect, render_template, request, url_for

from app.extensions import db
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
    """For load balancers: the app answers and the database is reachable."""
    db.session.execute(sa.select(1))
    return jsonify({"status": "ok"})
