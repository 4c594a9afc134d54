"""Pages to browse the occupation tree, search it, and see the courses filed under it."""

from __future__ import annotations

from flask import abort, render_template, request

from app.catalog import bp, service
from app.courses import models as course_models  # see service.py on why the module
from app.http import int_arg

PER_PAGE = 30
COURSES_PER_PAGE = 20


@bp.get("/catalog")
def index():
    q = request.args.get("q", "").strip()[:100]
    if not q:
        return render_template(
            "catalog/index.html",
            q="",
            groups=service.children(None),
            counts=service.counts_by_level(),
        )
    page = int_arg("page", 1, low=1, high=10_000)
    result = service.search(q, page=page, per_page=PER_PAGE)
    pages = max(1, -(-result.total // PER_PAGE))
    return render_template("catalog/search.html", q=q, result=result, page=page, pages=pages)


@bp.get("/catalog/<code>")
def node(code: str):
    occupation = service.get(code)
    if occupation is None:
        abort(404)
    page = int_arg("page", 1, low=1, high=10_000)
    courses = service.find_courses(occupation=code, page=page, per_page=COURSES_PER_PAGE)
    return render_template(
        "catalog/node.html",
        occupation=occupation,
        trail=service.ancestors(occupation),
        children=service.children(code),
        courses=courses,
        level_labels=course_models.LEVEL_LABELS,
    )
