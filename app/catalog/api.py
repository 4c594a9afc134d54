"""JSON endpoints for the occupational classification and the public course catalogue."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for
from flask_babel import lazy_gettext as _l

from app.catalog import bp, service
from app.courses import models as course_models  # see service.py on why the module
from app.errors import Invalid, NotFound
from app.http import int_arg


@bp.get("/api/v1/occupations")
def api_occupations():
    q = request.args.get("q", "")
    if len(q) > 100:
        raise Invalid(fields={"q": _l("Search with at most 100 characters.")})
    level = int_arg("level", 0, low=0, high=4) or None
    parent = request.args.get("parent") or None
    page = int_arg("page", 1, low=1, high=10_000)
    per_page = int_arg("per_page", 20, low=1, high=100)
    result = service.search(q, level=level, parent=parent, page=page, per_page=per_page)
    return jsonify({"items": [occ.to_dict() for occ in result.items], "total": result.total})


@bp.get("/api/v1/occupations/<code>")
def api_occupation(code: str):
    occupation = service.get(code)
    if occupation is None:
        raise NotFound(_l("No occupation has this code."))
    body = occupation.to_dict()
    body["children"] = [child.to_dict() for child in service.children(code)]
    return jsonify(body)


def course_hit_json(hit: service.CourseHit) -> dict[str, Any]:
    course = hit.course
    return {
        "id": course.id,
        "title": course.title,
        "url": url_for("learning.course", course_id=course.id),
        "occupation": {"code": course.occupation_code, "name": course.occupation.name},
        "platform": {"id": course.platform_id, "name": course.platform.name},
        "level": course.level.value if course.level else None,
        "level_label": str(course_models.LEVEL_LABELS[course.level]) if course.level else None,
        "hours": float(course.hours),
        "lessons": hit.lessons,
        "video_s": round(hit.video_s, 1) if hit.video_s is not None else None,
        "published_at": course.published_at.isoformat() if course.published_at else None,
    }


@bp.get("/api/v1/catalogue/courses")
def api_catalogue_courses():
    """Published courses for anyone, no sign-in: the same search as the course list page."""
    q = request.args.get("q", "")
    if len(q) > service.MAX_QUERY:
        raise Invalid(fields={"q": _l("Search with at most 100 characters.")})
    occupation = request.args.get("occupation")
    page = int_arg("page", 1, low=1, high=10_000)
    per_page = int_arg("per_page", 20, low=1, high=50)
    result = service.find_courses(q, occupation=occupation or None, page=page, per_page=per_page)
    return jsonify(
        {
            "items": [course_hit_json(hit) for hit in result.items],
            "total": result.total,
            "page": result.page,
            "per_page": result.per_page,
            "occupation": result.occupation.to_dict() if result.occupation else None,
        }
    )
