"""Pages: the auditors' desk, the subsidy standards, the trainee's e-archive and appeals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.bureau import groups
from app.courses.models import LEVEL_LABELS, CourseLevel
from app.errors import AppError
from app.extensions import db
from app.identity.auth import reauthenticated, role_required
from app.identity.models import STAFF_ROLES, Role
from app.study import workflow
from app.subsidy import bp, desk, service
from app.subsidy.api import image_redirect
from app.verification.views import face_messages


@bp.app_context_processor
def desk_helpers() -> dict[str, Any]:
    return {"level_labels": LEVEL_LABELS, "reason_max": service.MAX_REASON}


def _act(work: Callable[[], Any], done: str) -> bool:
    """Run one decision from a form: commit and say so, or roll back and show why."""
    try:
        work()
    except AppError as error:
        db.session.rollback()
        flash(str(next(iter((error.fields or {}).values()), error.message)), "error")
        return False
    db.session.commit()
    flash(done, "success")
    return True


# --- the desk -------------------------------------------------------------------------------

# Enrolments per page of the queue.
QUEUE_PAGE = 200


@bp.get("/audit")
@role_required(*STAFF_ROLES)
def queue():
    if service.refresh_stale():
        db.session.commit()
    flags, references = desk.waiting_identity()
    pages = max(1, -(-service.queue_size() // QUEUE_PAGE))
    page = min(max(1, request.args.get("page", 1, type=int) or 1), pages)
    return render_template(
        "subsidy/queue.html",
        items=service.review_queue(QUEUE_PAGE, (page - 1) * QUEUE_PAGE),
        flags=flags,
        references=references,
        page=page,
        pages=pages,
    )


@bp.get("/audit/enrollments/<int:enrollment_id>")
@role_required(*STAFF_ROLES)
def review(enrollment_id: int):
    enrollment = service.enrollment_by_id(enrollment_id)
    facts = service.facts_for(enrollment)
    state = service.subsidy_of(enrollment, facts)
    decisions, appeals = service.history(enrollment)
    return render_template(
        "subsidy/review.html",
        enrollment=enrollment,
        trainee=desk.trainee_of(enrollment),
        panel=groups.trainee_panel(desk.trainee_of(enrollment), current_user),
        subsidy=service.subsidy_json(state),
        certificate_no=state.certificate_no,
        facts=facts,
        cleared={check.id for check in facts.checks if check.cleared_by},
        reference=desk.reference_evidence(enrollment.trainee_id),
        snapshots=desk.snapshots(enrollment),
        sessions=desk.timeline(enrollment),
        flags=desk.flags_of(enrollment.trainee_id),
        decisions=decisions,
        appeals=appeals,
        next_id=service.next_in_queue(enrollment.id),
        face_messages=face_messages(),
    )


@bp.get("/audit/evidence/<int:evidence_id>")
@role_required(*STAFF_ROLES)
def evidence_image(evidence_id: int):
    return image_redirect(desk.evidence_for_view(evidence_id, current_user), current_user)


def _back(enrollment_id: int, *, ok: bool = False, anchor: str = "decision"):
    """Back to the enrolment, at the part acted on (desk.js puts the focus back there and
    the page where it was), or on to the next one in the queue after a final decision."""
    following = request.form.get("next", type=int)
    if ok and following:
        return redirect(url_for("subsidy.review", enrollment_id=following))
    return redirect(url_for("subsidy.review", enrollment_id=enrollment_id, _anchor=anchor))


@bp.post("/audit/enrollments/<int:enrollment_id>/decision")
@role_required(*STAFF_ROLES)
@reauthenticated
def decide(enrollment_id: int):
    decision = request.form.get("decision")
    ok = _act(
        lambda: service.decide(
            enrollment_id,
            decision,
            request.form.get("reason"),
            auditor=current_user,
        ),
        _("Enrolment %(id)d approved.", id=enrollment_id)
        if decision == "approve"
        else _("Enrolment %(id)d rejected.", id=enrollment_id),
    )
    return _back(enrollment_id, ok=ok)


@bp.post("/audit/checks/<int:check_id>/clear")
@role_required(*STAFF_ROLES)
@reauthenticated
def clear_check(check_id: int):
    enrollment_id = request.form.get("enrollment_id", type=int) or 0
    _act(
        lambda: service.clear_check(check_id, request.form.get("reason"), auditor=current_user),
        _("Face check %(id)d cleared.", id=check_id),
    )
    return _back(enrollment_id, anchor=f"check-{check_id}")


def _return_to(default: str):
    """Back to where the form was (a desk page), never anywhere else."""
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/audit/") else default)


@bp.get("/audit/flags/<int:flag_id>")
@role_required(*STAFF_ROLES)
def flag(flag_id: int):
    item, pair = desk.flag_pair(flag_id)
    outside = pair.right[0] is None
    return render_template(
        "subsidy/faces.html",
        title=_("Identity flag %(id)d", id=item.id),
        question=_("Is this one person with two accounts, or two different people?"),
        sides=[
            {"user": pair.left[0], "evidence": pair.left[1], "caption": _("Flagged enrolment")},
            {"user": pair.right[0], "evidence": pair.right[1], "caption": _("Already enrolled")},
        ],
        score=pair.score,
        model=pair.model,
        open=pair.open and not outside,
        outside=outside,
        action=url_for("subsidy.resolve_flag", flag_id=item.id),
        choices=[
            ("cleared", _("Two different people"), ""),
            ("confirmed", _("Same person"), "danger"),
        ],
    )


@bp.post("/audit/flags/<int:flag_id>/resolve")
@role_required(*STAFF_ROLES)
@reauthenticated
def resolve_flag(flag_id: int):
    def resolve() -> None:
        desk.require_both_sides(flag_id)
        workflow.resolve_flag(
            flag_id, request.form.get("outcome"), request.form.get("reason"), auditor=current_user
        )

    _act(
        resolve,
        _("Identity flag %(id)d closed.", id=flag_id),
    )
    return _return_to(url_for("subsidy.flag", flag_id=flag_id, _anchor="decision"))


@bp.get("/audit/references/<int:reference_id>")
@role_required(*STAFF_ROLES)
def reference(reference_id: int):
    item, pair = desk.reference_pair(reference_id)
    return render_template(
        "subsidy/faces.html",
        title=_("New reference face %(id)d", id=item.id),
        question=_(
            "The trainee enrolled a new face after studying. Approve it only if both photos "
            "show the same person."
        ),
        sides=[
            {"user": pair.left[0], "evidence": pair.left[1], "caption": _("Face in use")},
            {"user": pair.right[0], "evidence": pair.right[1], "caption": _("New face")},
        ],
        score=None,
        model=None,
        open=pair.open,
        action=url_for("subsidy.decide_reference", reference_id=item.id),
        choices=[("approve", _("Approve"), ""), ("reject", _("Reject"), "danger")],
    )


@bp.post("/audit/references/<int:reference_id>/decide")
@role_required(*STAFF_ROLES)
@reauthenticated
def decide_reference(reference_id: int):
    _act(
        lambda: workflow.decide_reference(
            reference_id,
            request.form.get("outcome"),
            request.form.get("reason"),
            auditor=current_user,
        ),
        _("Reference face %(id)d decided.", id=reference_id),
    )
    return redirect(url_for("subsidy.reference", reference_id=reference_id, _anchor="decision"))


# --- standards ------------------------------------------------------------------------------


@bp.route("/admin/standards", methods=["GET", "POST"])
@role_required(Role.ADMIN)
@reauthenticated
def standards():
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST":
        try:
            row = service.set_standard(
                form.get("occupation_code", ""),
                form.get("level") or None,
                form.get("amount_yuan", ""),
                staff=current_user,
            )
        except AppError as error:
            db.session.rollback()
            errors = {name: str(text) for name, text in (error.fields or {}).items()}
        else:
            db.session.commit()
            flash(
                _(
                    "The standard for %(code)s is now %(amount)s yuan.",
                    code=row.occupation_code,
                    amount=row.amount_yuan,
                ),
                "success",
            )
            return redirect(url_for("subsidy.standards"))
    return render_template(
        "subsidy/standards.html",
        rows=service.standards(),
        levels=list(CourseLevel),
        errors=errors,
        form=form,
    ), (422 if errors else 200)


# --- the trainee's e-archive ------------------------------------------------------------------


@bp.get("/me/archive")
@role_required(Role.TRAINEE)
def archive():
    return render_template(
        "subsidy/archive.html",
        items=service.archive(current_user),
        trainee=current_user,
    )


@bp.post("/me/enrollments/<int:enrollment_id>/appeal")
@role_required(Role.TRAINEE)
def appeal(enrollment_id: int):
    _act(
        lambda: service.appeal(current_user, enrollment_id, request.form.get("message")),
        _("Your appeal was sent to the auditors."),
    )
    enrollment_page = url_for("learning.enrollment", enrollment_id=enrollment_id)
    if request.form.get("back") == enrollment_page:
        return redirect(enrollment_page + "#subsidy")
    return redirect(url_for("subsidy.archive") + f"#enrollment-{enrollment_id}")
