"""Admin pages: approve platforms, suspend them, issue and revoke their API tokens."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.errors import AppError
from app.extensions import db
from app.identity.auth import role_required
from app.identity.models import Role
from app.platforms import bp, service
from app.platforms.models import PlatformStatus


@bp.get("/admin/platforms")
@role_required(Role.ADMIN)
def admin_platforms():
    platforms = service.all_platforms()
    return render_template(
        "platforms/admin_list.html",
        platforms=platforms,
        tokens={p.id: service.tokens(p) for p in platforms},
        errors={},
        values={},
    )


@bp.post("/admin/platforms")
@role_required(Role.ADMIN)
def admin_create_platform():
    values = {
        k: request.form.get(k, "")
        for k in ("name", "contact_name", "contact_phone", "contact_email")
    }
    try:
        platform = service.create(values.pop("name"), **values)
        token, _row = service.issue_token(platform, label=_("issued on approval"))
    except AppError as error:
        db.session.rollback()
        platforms = service.all_platforms()
        return render_template(
            "platforms/admin_list.html",
            platforms=platforms,
            tokens={p.id: service.tokens(p) for p in platforms},
            errors={k: str(v) for k, v in (error.fields or {"name": error.message}).items()},
            values=request.form,
        ), error.status
    db.session.commit()
    return render_template("platforms/token_once.html", platform=platform, token=token)


@bp.post("/admin/platforms/<int:platform_id>/status")
@role_required(Role.ADMIN)
def admin_set_status(platform_id: int):
    platform = service.get(platform_id)
    raw = request.form.get("status")
    if raw in {s.value for s in PlatformStatus}:
        service.set_status(platform, PlatformStatus(raw))
        db.session.commit()
        flash(_("%(name)s is now %(status)s.", name=platform.name, status=raw), "success")
    return redirect(url_for("platforms.admin_platforms"))


@bp.post("/admin/platforms/<int:platform_id>/tokens")
@role_required(Role.ADMIN)
def admin_issue_token(platform_id: int):
    platform = service.get(platform_id)
    token, _row = service.issue_token(platform, label=request.form.get("label", ""))
    db.session.commit()
    return render_template("platforms/token_once.html", platform=platform, token=token)


@bp.post("/admin/platforms/<int:platform_id>/tokens/<int:token_id>/revoke")
@role_required(Role.ADMIN)
def admin_revoke_token(platform_id: int, token_id: int):
    service.revoke_token(service.get(platform_id), token_id)
    db.session.commit()
    flash(_("Token revoked."), "success")
    return redirect(url_for("platforms.admin_platforms"))
