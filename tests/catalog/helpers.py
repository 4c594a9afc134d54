"""Published courses made straight in the database, many at once, for the list and search tests.

Lists are about which courses show and how; the platform API and the video pipeline that
publish a course for real are tested elsewhere (tests/courses, tests/study.publish_course).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask

from app.courses.models import Course, CourseLevel, CourseStatus, Lesson, LessonStatus
from app.db import utcnow
from app.extensions import db
from app.platforms.models import Platform

ELECTRICIAN = "6-31-01-03"  # 电工


def platform_named(name: str) -> int:
    platform = db.session.scalar(sa.select(Platform).where(Platform.name == name))
    if platform is None:
        platform = Platform(name=name, contact_name="张工")
        db.session.add(platform)
        db.session.flush()
    return platform.id


def add_course(
    app: Flask,
    title: str,
    *,
    occupation: str = ELECTRICIAN,
    platform: str = "鲁班学堂",
    status: CourseStatus = CourseStatus.PUBLISHED,
    lessons: int = 2,
    lesson_s: float = 10.0,
    age_s: int = 0,
    level: CourseLevel | None = CourseLevel.JUNIOR,
) -> int:
    """A course with ready lessons; `age_s` seconds ago is when it was published."""
    with app.app_context():
        course = Course(
            platform_id=platform_named(platform),
            occupation_code=occupation,
            title=title,
            level=level,
            hours=Decimal("16"),
            status=status,
            published_at=utcnow() - timedelta(seconds=age_s)
            if status is CourseStatus.PUBLISHED
            else None,
        )
        for position in range(1, lessons + 1):
            course.lessons.append(
                Lesson(
                    position=position,
                    title=f"第{position}课",
                    status=LessonStatus.READY,
                    duration_s=lesson_s,
                )
            )
        db.session.add(course)
        db.session.commit()
        return course.id


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app sends to its database inside the block."""
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
