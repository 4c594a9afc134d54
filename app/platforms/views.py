"""Admin pages: approve platforms, suspend them, issue and revoke their API tokens."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.bureau import service as bureau
from app.errors import AppError
from app.extensions import db
from app.identity.auth import role_required
from app.identity.models import Role
from app.platforms import bp, service
from app.platforms.models import PlatformStatus


def _listing(status: int = 200, **extra: Any):
    """The platforms page; after a refused form, with its errors and what was typed."""
    platforms = service.all_platforms()
    context: dict[str, Any] = {"errors": {}, "values": {}, "token_errors": {}, "token_values": {}}
    context.update(extra)
    districts = bureau.districts()
    return render_template(
        "platforms/admin_list.html",
        platforms=platforms,
        districts=districts,
        districts_by_code={d.code: d for d in districts},
        tokens={p.id: service.tokens(p) for p in platforms},
        token_state=service.token_state,
        **context,
    ), status


@bp.get("/admin/platforms")
@role_required(Role.ADMIN)
def admin_platforms():
    return _listing()


@bp.post("/admin/platforms")
@role_required(Role.ADMIN)
def admin_create_platform():
    try:  # reading the form checks its text too (app/inputs.py): a refusal shows on the page
        values = {
            k: request.form.get(k, "")
            for k in ("name", "contact_name", "contact_phone", "contact_email")
        }
        # The approval form names the first token too; a form without the field (older
        # pages, scripts) gets the usual label.
        label = service.token_label(request.form.get("label", _("issued on approval")))
        platform = service.create(
            values.pop("name"), district_code=request.form.get("district") or None, **values
        )
        token, _row = service.issue_token(platform, label=label)
    except AppError as error:
        db.session.rollback()
        errors = {k: str(v) for k, v in (error.fields or {"name": error.message}).items()}
        return _listing(error.status, errors=errors, values=request.form)
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
        if raw == PlatformStatus.SUSPENDED:
            message = _("%(name)s is suspended: its tokens stop working.", name=platform.name)
        else:
            message = _("%(name)s is active again.", name=platform.name)
        flash(message, "success")
    return redirect(url_for("platforms.admin_platforms"))


@bp.post("/admin/platforms/<int:platform_id>/tokens")
@role_required(Role.ADMIN)
def admin_issue_token(platform_id: int):
    platform = service.get(platform_id)
    try:
        token, _row = service.issue_token(platform, label=request.form.get("label", ""))
    except AppError as error:
        db.session.rollback()
        message = str(next(iter((error.fields or {}).values()), error.message))
        return _listing(
            error.status,
            token_errors={platform.id: message},
            token_values={platform.id: request.form.get("label", "")},
        )
    db.session.commit()
    return render_template("platforms/token_once.html", platform=platform, token=token)


@bp.get("/admin/platforms/<int:platform_id>/tokens/<int:token_id>/revoke")
@role_required(Role.ADMIN)
def admin_confirm_revoke(platform_id: int, token_id: int):
    platform = service.get(platform_id)
    row = service.token_of(platform, token_id)
    return render_template(
        "platforms/revoke_confirm.html",
        platform=platform,
        token=row,
        state=service.token_state(row),
    )


@bp.post("/admin/platforms/<int:platform_id>/tokens/<int:token_id>/revoke")
@role_required(Role.ADMIN)
def admin_revoke_token(platform_id: int, token_id: int):
    platform = service.get(platform_id)
    row = service.token_of(platform, token_id)
    # Revoking stops an integration at once: only the confirmation page's own button does it.
    if request.form.get("confirm") != "yes":
        return redirect(
            url_for("platforms.admin_confirm_revoke", platform_id=platform.id, token_id=row.id),
            303,
        )
    service.revoke_token(platform, row.id)
    db.session.commit()
    flash(_("Token “%(label)s” revoked.", label=row.label), "success")
    return redirect(url_for("platforms.admin_platforms"))
