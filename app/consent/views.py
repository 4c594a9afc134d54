"""Pages: the consent to face processing (give, withdraw) and the public privacy notice."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from app.consent import bp, service, texts
from app.errors import AppError
from app.extensions import db
from app.identity.auth import role_required
from app.identity.models import Role
from app.urls import safe_next

WHEN = "yyyy-MM-dd HH:mm"


def _when(moment) -> str:
    return format_datetime(moment, WHEN) if moment else ""


@bp.get("/privacy")
def privacy():
    return render_template(
        "site/privacy.html",
        sections=texts.sections(texts.FACE),
        retention=texts.retention(),
        version=texts.CURRENT[texts.FACE],
    )


def _consent_page(errors: dict[str, str] | None = None, status: int = 200):
    user = current_user._get_current_object()
    consent = service.standing(user.id, texts.FACE)
    withdrawal = None if consent else service.last_withdrawal(user.id)
    return render_template(
        "consent/consent.html",
        title=texts.TITLES[texts.FACE],
        sections=texts.sections(texts.FACE),
        version=texts.CURRENT[texts.FACE],
        given=service.has_consent(user.id),
        given_at=_when(consent.given_at) if consent else "",
        outdated=consent is not None and not service.has_consent(user.id),
        withdrawn_at=_when(withdrawal.ended_at) if withdrawal else "",
        next_url=safe_next(request.values.get("next")) or "",
        errors=errors or {},
    ), status


@bp.get("/me/consent")
@role_required(Role.TRAINEE)
def consent_page():
    return _consent_page()


@bp.post("/me/consent")
@role_required(Role.TRAINEE)
def give_consent():
    if request.form.get("agree") != "yes":
        return _consent_page(
            {"agree": _("Tick the box to say you have read the text and agree.")}, 422
        )
    try:
        service.give(current_user._get_current_object(), texts.FACE, request.form.get("version"))
    except AppError as error:
        db.session.rollback()
        return _consent_page({"agree": str(error.message)}, error.status)
    db.session.commit()
    flash(_("Thank you. Your consent is recorded; you can now enrol your face."), "success")
    return redirect(safe_next(request.form.get("next")) or url_for("verification.enrol_page"))


@bp.get("/me/consent/withdraw")
@role_required(Role.TRAINEE)
def confirm_withdrawal():
    return render_template(
        "consent/withdraw.html",
        meaning=service.withdrawal_meaning(),
        given=service.has_consent(current_user.id),
    )


@bp.post("/me/consent/withdraw")
@role_required(Role.TRAINEE)
def withdraw():
    result = service.withdraw(current_user._get_current_object(), texts.FACE)
    db.session.commit()
    flash(
        _(
            "Your consent is withdrawn and your face data is deleted (%(deleted)d photo(s)); "
            "%(kept)d photo(s) behind subsidy decisions stay for their retention period.",
            deleted=result.images_deleted,
            kept=result.images_kept,
        ),
        "success",
    )
    return redirect(url_for("consent.consent_page"))
