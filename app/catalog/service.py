"""Loading and querying the occupational classification, and finding courses by occupation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import contains_eager

from app.catalog.models import Occupation

# Courses are filed under occupations, so app.courses.models imports the catalogue: take the
# module (complete by the time a search runs), not its names, which may not exist yet here.
from app.courses import models as course_models
from app.db import like_pattern
from app.errors import NotFound
from app.extensions import db
from app.platforms.models import Platform

DATA_FILE = Path(__file__).parent / "data" / "classification-2022.json"


@dataclass(frozen=True)
class LoadResult:
    added: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class Page:
    items: list[Occupation]
    total: int


def _flatten(nodes: list[dict[str, Any]], parent: str | None) -> Iterator[dict[str, Any]]:
    for position, node in enumerate(nodes):
        yield {
            "code": node["seq"],
            "gb_code": str(node.get("gbm") or ""),
            "name": node["name"].strip(),
            "level": int(node["level"]),
            "parent_code": parent,
            "position": position,
        }
        yield from _flatten(node.get("children") or [], node["seq"])


def read_tree(path: Path = DATA_FILE) -> list[dict[str, Any]]:
    """The classification as rows, parents before children."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return list(_flatten(document["data"], None))


def load(path: Path = DATA_FILE) -> LoadResult:
    """Insert or update every node; running it twice changes nothing the second time."""
    rows = read_tree(path)
    existing = {occ.code: occ for occ in db.session.scalars(sa.select(Occupation))}
    added = updated = 0
    for row in rows:  # parents come first, so foreign keys hold at every flush
        current = existing.get(row["code"])
        if current is None:
            db.session.add(Occupation(**row))
            added += 1
        elif any(getattr(current, key) != value for key, value in row.items()):
            for key, value in row.items():
                setattr(current, key, value)
            updated += 1
    db.session.flush()
    return LoadResult(added=added, updated=updated, unchanged=len(rows) - added - updated)


def counts_by_level() -> dict[int, int]:
    query = sa.select(Occupation.level, sa.func.count()).group_by(Occupation.level)
    return {level: count for level, count in db.session.execute(query)}


def get(code: str) -> Occupation | None:
    return db.session.get(Occupation, code)


def children(code: str | None) -> list[Occupation]:
    query = sa.select(Occupation).where(
        Occupation.parent_code.is_(None) if code is None else Occupation.parent_code == code
    )
    return list(db.session.scalars(query.order_by(Occupation.position)))


def ancestors(occupation: Occupation) -> list[Occupation]:
    """From the major group down to the node's parent."""
    chain: list[Occupation] = []
    parent_code = occupation.parent_code
    while parent_code:
        parent = db.session.get(Occupation, parent_code)
        if parent is None:
            break
        chain.append(parent)
        parent_code = parent.parent_code
    return chain[::-1]


def search(
    q: str = "",
    *,
    level: int | None = None,
    parent: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """Occupations whose name contains q or whose code starts with it, in the book's order."""
    query = sa.select(Occupation)
    q = q.strip()
    if q:
        query = query.where(
            sa.or_(
                Occupation.name.like(like_pattern(q), escape="\\"),
                Occupation.code.like(like_pattern(q, prefix=True), escape="\\"),
                Occupation.gb_code == q,
            )
        )
    if level is not None:
        query = query.where(Occupation.level == level)
    if parent is not None:
        query = query.where(Occupation.parent_code == parent)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    # Codes are zero-padded (`4-10-01-06`), so their string order is the book's order.
    ordered = query.order_by(Occupation.level, Occupation.code)
    items = list(db.session.scalars(ordered.limit(per_page).offset((page - 1) * per_page)))
    return Page(items=items, total=total)


# --- courses by occupation ------------------------------------------------------------------

MAX_QUERY = 100  # characters of search text
MAX_CODE = 16  # the longest an occupation code can be (the column's width)


@dataclass(frozen=True)
class CourseHit:
    """A published course as a list shows it: its occupation and platform are loaded with it."""

    course: course_models.Course
    lessons: int
    video_s: float | None  # the length of all its videos, when known


@dataclass(frozen=True)
class CoursePage:
    items: list[CourseHit]
    total: int
    page: int
    per_page: int
    occupation: Occupation | None  # the subtree searched, if one was asked for

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def occupation_scope(code: str) -> Occupation:
    """The occupation or group whose courses are asked for; 404 `occupation_not_found`."""
    occupation = get(code) if 0 < len(code) <= MAX_CODE else None
    if occupation is None:
        raise NotFound(_l("No occupation has this code."), code="occupation_not_found")
    return occupation


def within(code: str) -> sa.ColumnElement[bool]:
    """A course filed under the occupation `code` or anywhere below the group `code`.

    Codes nest (`6` > `6-31` > `6-31-01` > `6-31-01-03`), so a subtree is a code prefix that
    ends at a dash: `6-3` must not take in `6-31`.
    """
    Course = course_models.Course
    return sa.or_(
        Course.occupation_code == code,
        Course.occupation_code.like(like_pattern(f"{code}-", prefix=True), escape="\\"),
    )


def matching(q: str) -> sa.ColumnElement[bool]:
    """The search rule: q in the title, the occupation's name or the platform's name (any
    case), or the start of the occupation's code, or its GB/T 6565 code."""
    pattern = like_pattern(q)
    Course = course_models.Course
    return sa.or_(
        Course.title.ilike(pattern, escape="\\"),
        Occupation.name.ilike(pattern, escape="\\"),
        Platform.name.ilike(pattern, escape="\\"),
        Occupation.code.like(like_pattern(q, prefix=True), escape="\\"),
        Occupation.gb_code == q,
    )


def find_courses(
    q: str = "", *, occupation: str | None = None, page: int = 1, per_page: int = 20
) -> CoursePage:
    """Published courses matching q, under an occupation (and its descendants) if one is
    given, newest first: the one search behind the course list, the occupation pages and
    `GET /api/v1/catalogue/courses`. Two queries, whatever the number of courses."""
    Course, Lesson = course_models.Course, course_models.Lesson
    scope = occupation_scope(occupation) if occupation is not None else None
    q = q.strip()[:MAX_QUERY]
    conditions = [Course.status == course_models.CourseStatus.PUBLISHED]
    if scope is not None:
        conditions.append(within(scope.code))
    if q:
        conditions.append(matching(q))
    total = db.session.scalar(
        sa.select(sa.func.count(Course.id))
        .join(Course.occupation)
        .join(Course.platform)
        .where(*conditions)
    )
    lengths = (
        sa.select(
            Lesson.course_id,
            sa.func.count(Lesson.id).label("lessons"),
            sa.func.sum(Lesson.duration_s).label("video_s"),
        )
        .group_by(Lesson.course_id)
        .subquery()
    )
    query = (
        sa.select(Course, lengths.c.lessons, lengths.c.video_s)
        .join(Course.occupation)
        .join(Course.platform)
        .outerjoin(lengths, lengths.c.course_id == Course.id)
        .where(*conditions)
        .options(contains_eager(Course.occupation), contains_eager(Course.platform))
        # Newest first; the id breaks ties so that pages never overlap or skip.
        .order_by(sa.func.coalesce(Course.published_at, Course.created_at).desc(), Course.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [
        CourseHit(course, lessons or 0, float(video_s) if video_s else None)
        for course, lessons, video_s in db.session.execute(query)
    ]
    return CoursePage(items, total or 0, page, per_page, scope)
