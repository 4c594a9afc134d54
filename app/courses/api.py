"""JSON API for platforms: courses, lessons, resumable video upload, captions; HLS playlists."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, abort, current_app, jsonify, request
from flask_babel import lazy_gettext as _l

from app.courses import bp, playback, service, upload
from app.courses.models import LEVEL_NAMES_ZH, Course, Lesson, LessonStatus
from app.courses.pipeline import KIND as TRANSCODE
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db
from app.http import json_body
from app.identity.auth import api_auth, current_api_user
from app.identity.models import STAFF_ROLES, Role
from app.jobs import service as jobs
from app.platforms import service as platforms
from media_pipeline.limits import MAX_CAPTION_BYTES

# Room for the multipart envelope around a caption file of the largest size.
FORM_OVERHEAD_BYTES = 64 * 1024


def caller_platform():
    return platforms.platform_of(current_api_user())


def course_json(course: Course) -> dict[str, Any]:
    return {
        "id": course.id,
        "status": course.status.value,
        "title": course.title,
        "occupation_code": course.occupation_code,
        "occupation_name": course.occupation.name,
        "level": course.level.value if course.level else None,
        "level_name": LEVEL_NAMES_ZH[course.level] if course.level else None,
        "hours": float(course.hours),
        "description": course.description,
        "district": course.district_code,
        "programme_id": course.programme_id,
        "reject_reason": course.reject_reason,
        "lessons": [
            {
                "id": lesson.id,
                "position": lesson.position,
                "title": lesson.title,
                "status": lesson.status.value,
            }
            for lesson in course.lessons
        ],
    }


def lesson_json(lesson: Lesson) -> dict[str, Any]:
    job = jobs.latest(TRANSCODE, lesson.id)
    progress = lesson.progress
    if lesson.status is LessonStatus.PROCESSING and job is not None:
        progress = max(progress, job.progress)
    ready = lesson.status is LessonStatus.READY
    return {
        "id": lesson.id,
        "course_id": lesson.course_id,
        "position": lesson.position,
        "title": lesson.title,
        "status": lesson.status.value,
        "progress": round(progress, 1),
        "duration_s": lesson.duration_s,
        "error": {"code": lesson.error_code, "message": lesson.error_message}
        if lesson.error_code
        else None,
        "playlist_url": playback.playlist_url(lesson) if ready else None,
        "poster_url": playback.poster_url(lesson) if ready else None,
        "renditions": json.loads(lesson.renditions) if lesson.renditions else [],
        "captions": [{"language": c.language, "label": c.label} for c in lesson.captions],
        "upload": {"received_bytes": lesson.upload_received, "total_bytes": lesson.upload_total},
    }


@bp.post("/api/v1/courses")
@api_auth(Role.PLATFORM)
def api_create_course():
    course = service.create_course(caller_platform(), json_body())
    db.session.commit()
    return jsonify({"id": course.id, "status": course.status.value}), 201


@bp.get("/api/v1/courses")
@api_auth(Role.PLATFORM)
def api_list_courses():
    courses = service.courses_of(caller_platform())
    return jsonify({"items": [course_json(course) for course in courses]})


@bp.get("/api/v1/courses/<int:course_id>")
@api_auth(Role.PLATFORM)
def api_get_course(course_id: int):
    return jsonify(course_json(service.course_for(caller_platform(), course_id)))


@bp.post("/api/v1/courses/<int:course_id>/lessons")
@api_auth(Role.PLATFORM)
def api_add_lesson(course_id: int):
    course = service.course_for(caller_platform(), course_id)
    lesson = service.add_lesson(course, json_body())
    db.session.commit()
    return jsonify({"id": lesson.id, "position": lesson.position}), 201


@bp.post("/api/v1/courses/<int:course_id>/submit")
@api_auth(Role.PLATFORM)
def api_submit_course(course_id: int):
    course = service.course_for(caller_platform(), course_id)
    service.submit(course)
    db.session.commit()
    return jsonify({"id": course.id, "status": course.status.value})


@bp.put("/api/v1/courses/<int:course_id>/cover")
@api_auth(Role.PLATFORM)
def api_set_cover(course_id: int):
    course = service.course_for(caller_platform(), course_id)
    request.max_content_length = service.MAX_COVER_BYTES
    service.set_cover(course, request.get_data())
    db.session.commit()
    return jsonify({"id": course.id, "cover": True})


def upload_json(lesson: Lesson) -> dict[str, Any]:
    state = upload.state(lesson)
    return {
        "received_bytes": state.received,
        "total_bytes": state.total,
        "status": lesson.status.value,
    }


@bp.put("/api/v1/lessons/<int:lesson_id>/video")
@api_auth(Role.PLATFORM)
def api_upload_video(lesson_id: int):
    lesson = service.lesson_for(caller_platform(), lesson_id)
    request.max_content_length = current_app.config["UPLOAD_CHUNK_MAX_BYTES"]
    length = request.content_length
    if length is None and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        length = 0  # no body at all
    chunk = upload.parse_range(request.headers.get("Content-Range"), length)
    state = upload.receive_chunk(lesson, chunk, request.stream)
    job = jobs.enqueue(TRANSCODE, lesson.id) if lesson.status is LessonStatus.QUEUED else None
    db.session.commit()
    if job is not None and state.complete:
        jobs.dispatch(job.id)
        return jsonify(upload_json(lesson)), 202
    return jsonify(upload_json(lesson)), 200


@bp.get("/api/v1/lessons/<int:lesson_id>/upload")
@api_auth(Role.PLATFORM)
def api_upload_state(lesson_id: int):
    lesson = service.lesson_for(caller_platform(), lesson_id)
    return jsonify(upload_json(lesson))


@bp.get("/api/v1/lessons/<int:lesson_id>")
@api_auth()
def api_lesson(lesson_id: int):
    return jsonify(lesson_json(readable_lesson(lesson_id)))


def readable_lesson(lesson_id: int) -> Lesson:
    """Platforms see their own lessons, staff every lesson."""
    user = current_api_user()
    if user.role is Role.PLATFORM:
        return service.lesson_for(caller_platform(), lesson_id)
    if user.role not in STAFF_ROLES:
        raise Forbidden()
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(_l("No such lesson."))
    return lesson


@bp.post("/api/v1/lessons/<int:lesson_id>/captions")
@api_auth(Role.PLATFORM)
def api_add_captions(lesson_id: int):
    lesson = service.lesson_for(caller_platform(), lesson_id)
    request.max_content_length = MAX_CAPTION_BYTES + FORM_OVERHEAD_BYTES
    file = request.files.get("file")
    if file is None:
        raise Invalid(fields={"file": _l("Send the captions as multipart field 'file'.")})
    caption = service.add_captions(
        lesson, request.form.get("language"), file.read(), actor=current_api_user()
    )
    db.session.commit()
    return jsonify({"language": caption.language, "label": caption.label}), 201


@bp.get("/media/lessons/<int:lesson_id>/<path:name>")
def lesson_playlist(lesson_id: int, name: str):
    """HLS playlists, rewritten so that every URI inside is signed and short-lived."""
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.status is not LessonStatus.READY:
        abort(404)
    if not playback.may_play(lesson, request.args.get("exp"), request.args.get("sig")):
        abort(403)
    text = playback.render_playlist(lesson, name)
    if text is None:
        abort(404)
    response = Response(text, mimetype="application/vnd.apple.mpegurl")
    response.headers["Cache-Control"] = "private, no-store"
    return response
