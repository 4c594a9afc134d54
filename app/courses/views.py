"""Admin pages: review courses, watch the pipeline."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.bureau import service as bureau
from app.courses import bp, playback, service
from app.courses.api import lesson_json
from app.courses.models import LEVEL_LABELS, CourseStatus, Lesson, LessonStatus
from app.errors import AppError, Conflict
from app.extensions import db
from app.identity.auth import role_required
from app.identity.models import Role
from app.labels import label


@bp.get("/admin/courses")
@role_required(Role.ADMIN)
def admin_courses():
    raw = request.args.get("status", "")
    status = CourseStatus(raw) if raw in {s.value for s in CourseStatus} else None
    return render_template(
        "courses/admin_list.html",
        courses=service.courses_for_review(status),
        caption_changes=service.unacknowledged_caption_changes(),
        status=status,
        statuses=list(CourseStatus),
        level_labels=LEVEL_LABELS,
    )


@bp.get("/admin/courses/<int:course_id>")
@role_required(Role.ADMIN)
def admin_course(course_id: int):
    course = service.get_course(course_id)
    return render_template(
        "courses/admin_course.html",
        course=course,
        lessons=[lesson_json(lesson) for lesson in course.lessons],
        level_labels=LEVEL_LABELS,
        caption_changes=service.caption_changes(course),
        language_labels=service.LANGUAGE_LABELS,
        districts=bureau.districts(),
        programmes=bureau.programmes_of_years(),
    )


@bp.post("/admin/courses/<int:course_id>/filing")
@role_required(Role.ADMIN)
def admin_file_course(course_id: int):
    course = service.get_course(course_id)
    try:
        service.file_course(course, request.form.to_dict(), staff=current_user)
    except AppError as error:
        db.session.rollback()
        for message in (error.fields or {"district": error.message}).values():
            flash(str(message), "error")
    else:
        db.session.commit()
        flash(_("The course's district and programme are saved."), "success")
    return redirect(url_for("courses.admin_course", course_id=course_id, _anchor="filing"))


@bp.post("/admin/courses/<int:course_id>/caption-changes/acknowledge")
@role_required(Role.ADMIN)
def admin_acknowledge_captions(course_id: int):
    course = service.get_course(course_id)
    if service.acknowledge_caption_changes(course, current_user):
        flash(_("Caption changes marked as seen."), "success")
    db.session.commit()
    return redirect(url_for("courses.admin_course", course_id=course_id, _anchor="captions"))


@bp.get("/admin/lessons/<int:lesson_id>/preview")
@role_required(Role.ADMIN)
def admin_preview(lesson_id: int):
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.status is not LessonStatus.READY:
        abort(404)
    return render_template(
        "courses/admin_preview.html",
        lesson=lesson,
        playlist_url=playback.playlist_url(lesson),
        poster_url=playback.poster_url(lesson),
    )


@bp.post("/admin/courses/<int:course_id>/decision")
@role_required(Role.ADMIN)
def admin_decide(course_id: int):
    course = service.get_course(course_id)
    action = request.form.get("action")
    try:
        if action == "publish":
            service.publish(course)
        elif action == "reject":
            service.reject(course, request.form.get("reason", ""))
        elif action == "withdraw":
            service.withdraw(course)
        else:
            raise AppError(_("Choose publish, reject or withdraw."))
    except Conflict:
        # Decided meanwhile (another admin, a second click): the error page answers 409 with
        # the stable code (not_in_review, not_published) and nothing of this request is kept.
        raise
    except AppError as error:
        db.session.rollback()
        message = (error.fields or {}).get("reason") or error.message
        flash(str(message), "error")
    else:
        db.session.commit()
        flash(
            _("Course %(id)d is now %(status)s.", id=course.id, status=label(course.status)),
            "success",
        )
    return redirect(url_for("courses.admin_course", course_id=course_id))
