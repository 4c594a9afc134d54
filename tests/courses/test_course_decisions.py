"""Decisions on a course sent at the same moment: exactly one applies and is logged once; the
others are refused with 409 and a stable code. With threads on the app (SQLite and
PostgreSQL), and against a real two-worker gunicorn on PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.courses.models import Course, CourseStatus, Lesson, LessonStatus
from app.db import utcnow
from app.extensions import db
from app.identity.models import Role
from app.platforms.models import Platform
from tests.conftest import csrf_from, make_platform, make_staff, sign_in_page
from tests.jobs.test_workers import worker_env
from tests.study.test_workflow_under_load import in_parallel
from tests.verification.test_faces_under_load import gunicorn

RACERS = 4


def course_in(app, status: CourseStatus) -> int:
    make_platform(app, "并发平台")
    with app.app_context():
        platform = db.session.scalar(sa.select(Platform).where(Platform.name == "并发平台"))
        course = Course(
            platform_id=platform.id,
            occupation_code="6-31-01-03",
            title="低压电工作业",
            hours=Decimal("16"),
            status=status,
            submitted_at=utcnow(),
            published_at=utcnow() if status is CourseStatus.PUBLISHED else None,
        )
        course.lessons.append(
            Lesson(position=1, title="第一课", status=LessonStatus.READY, duration_s=60.0)
        )
        db.session.add(course)
        db.session.commit()
        return course.id


def logged(app, course_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(AuditEntry.action).where(
                    AuditEntry.subject_type == "course", AuditEntry.subject_id == str(course_id)
                )
            )
        )


def status_of(app, course_id: int) -> CourseStatus:
    with app.app_context():
        return db.session.get(Course, course_id).status


def error_code(html: str) -> str | None:
    match = re.search(r"<code>([a-z_]+)</code> \(409\)", html)
    return match.group(1) if match else None


def signed_in_admins(app) -> list:
    clients = []
    for n in range(RACERS):
        make_staff(app, Role.ADMIN, f"chief{n}")
        client = app.test_client()
        sign_in_page(client, f"chief{n}")
        clients.append(client)
    return clients


@pytest.mark.parametrize(
    ("start", "action", "end", "code"),
    [
        (CourseStatus.IN_REVIEW, "publish", CourseStatus.PUBLISHED, "not_in_review"),
        (CourseStatus.IN_REVIEW, "reject", CourseStatus.REJECTED, "not_in_review"),
        (CourseStatus.PUBLISHED, "withdraw", CourseStatus.WITHDRAWN, "not_published"),
    ],
)
def test_simultaneous_decisions_apply_once_and_are_logged_once(fresh_app, start, action, end, code):
    course_id = course_in(fresh_app, start)
    clients = signed_in_admins(fresh_app)
    tokens = [
        csrf_from(c.get(f"/admin/courses/{course_id}").get_data(as_text=True)) for c in clients
    ]
    form = {"action": action, "reason": "字幕缺失"}

    def decide(n: int):
        return lambda: clients[n].post(
            f"/admin/courses/{course_id}/decision", data={**form, "csrf_token": tokens[n]}
        )

    answers = in_parallel([decide(n) for n in range(RACERS)])
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [302] + [409] * (RACERS - 1)
    for answer in answers:
        if answer.status_code == 409:
            assert error_code(answer.get_data(as_text=True)) == code
    assert status_of(fresh_app, course_id) is end
    assert logged(fresh_app, course_id) == [f"course.{action}"]


def test_a_decision_on_a_course_decided_meanwhile_is_409(fresh_app, client):
    course_id = course_in(fresh_app, CourseStatus.IN_REVIEW)
    make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    token = csrf_from(client.get(f"/admin/courses/{course_id}").get_data(as_text=True))
    url = f"/admin/courses/{course_id}/decision"
    assert client.post(url, data={"action": "publish", "csrf_token": token}).status_code == 302
    again = client.post(url, data={"action": "reject", "reason": "晚了", "csrf_token": token})
    assert again.status_code == 409 and error_code(again.get_data(as_text=True)) == "not_in_review"
    assert status_of(fresh_app, course_id) is CourseStatus.PUBLISHED
    assert logged(fresh_app, course_id) == ["course.publish"]


@pytest.mark.slow
def test_simultaneous_publishes_on_a_multi_worker_server_apply_once(
    database_url, fresh_app, tmp_path
):
    if not database_url.startswith("postgresql"):
        pytest.skip("a production-like server runs on PostgreSQL")
    course_id = course_in(fresh_app, CourseStatus.IN_REVIEW)
    for n in range(RACERS * 2):
        make_staff(fresh_app, Role.ADMIN, f"chief{n}")
    flags = ["--workers", "2", "--threads", "4"]
    with gunicorn(worker_env(fresh_app), tmp_path / "gunicorn.log", flags) as (_, port):
        base = f"http://127.0.0.1:{port}"
        sessions = []
        for n in range(RACERS * 2):
            http = requests.Session()
            token = csrf_from(http.get(f"{base}/login", timeout=60).text)
            signed_in = http.post(
                f"{base}/login",
                data={"login": f"chief{n}", "password": "Audit2026ok", "csrf_token": token},
                allow_redirects=False,
                timeout=60,
            )
            assert signed_in.status_code == 302
            page = http.get(f"{base}/admin/courses/{course_id}", timeout=60)
            sessions.append((http, csrf_from(page.text)))

        def decide(n: int, action: str):
            http, token = sessions[n]
            return lambda: http.post(
                f"{base}/admin/courses/{course_id}/decision",
                data={"action": action, "reason": "画面模糊", "csrf_token": token},
                allow_redirects=False,
                timeout=60,
            )

        # Four publishes and four rejections at the same moment: one of them wins.
        answers = in_parallel(
            [decide(n, "publish" if n % 2 else "reject") for n in range(RACERS * 2)]
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [302] + [409] * (RACERS * 2 - 1), (tmp_path / "gunicorn.log").read_text()
        assert all(error_code(a.text) == "not_in_review" for a in answers if a.status_code == 409)
        end = status_of(fresh_app, course_id)
        assert end in (CourseStatus.PUBLISHED, CourseStatus.REJECTED)
        assert logged(fresh_app, course_id) == [
            f"course.{'publish' if end.value == 'published' else 'reject'}"
        ]
        for session, _ in sessions:
            session.close()
