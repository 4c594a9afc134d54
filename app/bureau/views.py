"""Forms about a trainee's district and key groups: the trainee's own on their profile, and
staff corrections from the auditor's enrolment page."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.bureau import bp, groups, service
from app.errors import AppError, Forbidden
from app.extensions import db
from app.identity.auth import reauthenticated, role_required
from app.identity.models import Role
from app.labels import label

STAFF_WHO_CORRECT = (Role.ADMIN, Role.DISTRICT_OFFICER)


def _flash_error(error: AppError) -> None:
    db.session.rollback()
    flash(str(next(iter((error.fields or {}).values()), error.message)), "error")


def _back_to_profile():
    return redirect(url_for("identity.profile", _anchor="district"))


@bp.post("/profile/district")
@role_required(Role.TRAINEE)
def choose_district():
    """Once: a trainee without a district chooses one; after that only staff change it."""
    if current_user.district_code is not None:
        raise Forbidden(_("Your district is set. Ask your district's bureau to change it."))
    try:
        service.choose_district(current_user, request.form.get("district", ""))
    except AppError as error:
        _flash_error(error)
    else:
        db.session.commit()
        flash(_("Your district is saved."), "success")
    return _back_to_profile()


@bp.post("/profile/groups")
@role_required(Role.TRAINEE)
def declare_group():
    try:
        row = groups.declare(current_user, request.form.get("kind"))
    except AppError as error:
        _flash_error(error)
    else:
        db.session.commit()
        flash(_("“%(group)s” is on your profile.", group=label(row.kind)), "success")
    return redirect(url_for("identity.profile", _anchor="groups"))


@bp.post("/profile/groups/remove")
@role_required(Role.TRAINEE)
def withdraw_group():
    try:
        groups.withdraw(current_user, request.form.get("kind"))
    except AppError as error:
        _flash_error(error)
    else:
        db.session.commit()
        flash(_("The group is removed from your profile."), "success")
    return redirect(url_for("identity.profile", _anchor="groups"))


def _back_to_desk():
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/audit/") else url_for("subsidy.queue"))


@bp.post("/audit/trainees/<int:trainee_id>/district")
@role_required(*STAFF_WHO_CORRECT)
@reauthenticated
def correct_district(trainee_id: int):
    """Move a trainee to another district, with a reason. A district officer sees only their
    own district's trainees, so they can move one out but never pull one in."""
    trainee = groups.trainee_for_staff(trainee_id, current_user)
    try:
        service.correct_district(
            trainee.id,
            request.form.get("district", ""),
            request.form.get("reason", ""),
            staff=current_user,
        )
    except AppError as error:
        _flash_error(error)
        return _back_to_desk()
    moved_out = (
        current_user.role is Role.DISTRICT_OFFICER
        and trainee.district_code != current_user.district_code
    )
    db.session.commit()
    flash(_("The trainee's district is corrected."), "success")
    if moved_out:  # no longer theirs to see
        return redirect(url_for("subsidy.queue"))
    return _back_to_desk()


@bp.post("/audit/trainees/<int:trainee_id>/groups")
@role_required(*STAFF_WHO_CORRECT)
@reauthenticated
def verify_group(trainee_id: int):
    try:
        row = groups.verify(trainee_id, request.form.get("kind"), staff=current_user)
    except AppError as error:
        if error.status in (403, 404):
            raise
        _flash_error(error)
    else:
        db.session.commit()
        flash(_("“%(group)s” is verified.", group=label(row.kind)), "success")
    return _back_to_desk()
