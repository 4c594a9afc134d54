"""Pages for trainees: the course catalogue, a course, enrolment progress, the player."""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from app.catalog import service as catalog
from app.courses.models import LEVEL_LABELS
from app.errors import AppError
from app.extensions import db
from app.http import int_arg
from app.identity.auth import role_required
from app.identity.models import Role
from app.learning import bp, overview, rules, service
from app.subsidy import service as subsidy
from app.verification import service as verification
from app.verification.views import face_messages
from media_pipeline.limits import BURST_SPAN_MS, MAX_BURST_FRAMES

COURSES_PER_PAGE = 20

# Why a heartbeat earned less than the time that passed, in the trainee's words.
REASON_TEXT = {
    "first_heartbeat": _l("Playback started; time counts from the next report."),
    "gap": _l("The connection was lost for a while; that time was not counted."),
    "hidden": _l("The page was in the background; time is counted only while you watch."),
    "paused": _l("The video was paused."),
    "no_progress": _l("The video did not move forward."),
    "ahead_of_furthest": _l("You skipped ahead; skipped parts earn no time. Go back and watch."),
    "too_fast": _l("Played faster than normal speed; only real time counts."),
    "capped_interval": _l("Reports came too far apart; only part of the time counted."),
    "lesson_full": _l("This lesson's time is already complete."),
    "invalid_position": _l("The player reported an impossible position."),
    "repeated": _l("This report arrived twice; it was counted once."),
    "check_pending": _l("A face check is waiting; time counts again once it is answered."),
    "already_credited": _l("You already earned time for this part in this sitting."),
}


CHALLENGE_TEXT = {
    "blink": _l("Blink your eyes."),
    "turn_left": _l("Turn your head slowly to your left."),
    "turn_right": _l("Turn your head slowly to your right."),
}


@bp.app_context_processor
def learning_helpers() -> dict:
    return {"reason_text": lambda code: REASON_TEXT.get(code, code)}


@bp.get("/courses")
def catalogue():
    """Published courses: the course search (title, occupation, platform), by occupation."""
    q = request.args.get("q", "").strip()[: catalog.MAX_QUERY]
    # `occupation` is any node of the tree (occupation pages link here); `group` is the older
    # name of the same argument. An unknown code is ignored rather than refused: it came from
    # a link or a form, and the list without it is still useful.
    code = (request.args.get("occupation") or request.args.get("group") or "").strip()
    scope = catalog.get(code) if 0 < len(code) <= catalog.MAX_CODE else None
    page = int_arg("page", 1, low=1, high=10_000)
    result = catalog.find_courses(
        q, occupation=scope.code if scope else None, page=page, per_page=COURSES_PER_PAGE
    )
    keep = {"q": q, "occupation": scope.code if scope else ""}  # for the pager's links
    return render_template(
        "learning/catalogue.html",
        result=result,
        q=q,
        scope=scope,
        pager_args={name: value for name, value in keep.items() if value},
        groups=catalog.children(None),
        level_labels=LEVEL_LABELS,
    )


@bp.get("/courses/<int:course_id>")
def course(course_id: int):
    try:
        item = service.published_course(course_id)
    except AppError:
        abort(404)
    enrollment = None
    if current_user.is_authenticated and current_user.role is Role.TRAINEE:
        enrollment = service.find_enrollment(current_user, item.id)
    return render_template(
        "learning/course.html", course=item, enrollment=enrollment, level_labels=LEVEL_LABELS
    )


@bp.post("/courses/<int:course_id>/enrol")
@role_required(Role.TRAINEE)
def enrol(course_id: int):
    enrollment, _ = service.enroll(current_user, course_id)
    db.session.commit()
    return redirect(url_for("learning.enrollment", enrollment_id=enrollment.id))


@bp.get("/learn")
@login_required
def my_learning():
    face = verification.face_status(current_user) if current_user.role is Role.TRAINEE else None
    return render_template("learning/mine.html", overview=overview.of(current_user, face))


@bp.get("/learn/<int:enrollment_id>")
@login_required
def enrollment(enrollment_id: int):
    item = service.enrollment_for(current_user, enrollment_id)
    state = subsidy.subsidy_of(item)
    return render_template(
        "learning/enrollment.html",
        enrollment=item,
        subsidy=subsidy.subsidy_json(state),
        certificate_no=state.certificate_no,
        revoked=subsidy.revoked_certificates(item),
        rejection=subsidy.standing_rejection(state.assessment),
        video_s=sum(float(lesson.duration_s or 0) for lesson in item.course.lessons),
        rules=rules,
        carry_over_s=service.CARRY_OVER_S,
        summary=service.summarize(item),
        face=verification.face_status(current_user) if current_user.role is Role.TRAINEE else None,
        reasons=service.reasons_summary(item),
    )


@bp.get("/learn/lessons/<int:lesson_id>")
@role_required(Role.TRAINEE)
def player(lesson_id: int):
    lesson, enrollment = service.studyable_lesson(current_user, lesson_id)
    lessons = enrollment.course.lessons
    following = next((item for item in lessons if item.position > lesson.position), None)
    mine = next(
        item for item in service.summarize(enrollment)["lessons"] if item["id"] == lesson.id
    )
    return render_template(
        "learning/player.html",
        lesson=lesson,
        enrollment=enrollment,
        following=following,
        mine=mine,
        heartbeat_s=current_app.config["HEARTBEAT_S"],
        limits={
            "skip_tolerance_s": rules.SKIP_TOLERANCE_S,
            "burst_frames": MAX_BURST_FRAMES,
            "burst_span_ms": BURST_SPAN_MS,
            "prompt_lead_s": verification.PROMPT_LEAD_S,
            "prompt_lead_still_s": verification.PROMPT_LEAD_STILL_S,
            "prompt_lead_closing_extra_s": verification.PROMPT_LEAD_CLOSING_EXTRA_S,
        },
        reasons={code: str(text) for code, text in REASON_TEXT.items()},
        face_messages=face_messages(),
        challenges={code: str(text) for code, text in CHALLENGE_TEXT.items()},
    )
