"""Command-line tools for operators: staff accounts and demo content."""

import sqlalchemy as sa

from app.courses.models import Course, CourseStatus, LessonStatus
from app.extensions import db
from app.identity.models import User
from tests.conftest import count_rows


def test_users_create_makes_staff_that_can_sign_in(runner, client):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--role",
            "auditor",
            "--username",
            "zhang",
            "--password",
            "Audit2026ok",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "created auditor zhang" in result.output
    response = client.post("/api/v1/auth/token", json={"login": "zhang", "password": "Audit2026ok"})
    assert response.status_code == 200


def test_users_create_explains_refusals(runner, fresh_app):
    weak = runner.invoke(
        args=["users", "create", "--role", "admin", "--username", "li", "--password", "123"]
    )
    assert weak.exit_code != 0
    assert "username" in weak.output and "password" in weak.output
    assert count_rows(fresh_app, User) == 0
    ok = ["users", "create", "--role", "admin", "--username", "lee", "--password", "Admin2026ok"]
    assert runner.invoke(args=ok).exit_code == 0
    again = runner.invoke(args=ok)
    assert again.exit_code != 0 and "已被使用" in again.output  # CLI speaks the default language


def test_demo_seed_creates_accounts_once_and_prints_credentials(runner, fresh_app):
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "demo-admin" in first.output and "110105199003071239" in first.output
    created = count_rows(fresh_app, User)
    assert created == 4  # admin, auditor, trainee, and the demo platform's service account
    with fresh_app.app_context():
        course = db.session.scalar(sa.select(Course))
        assert course.status is CourseStatus.PUBLISHED
        assert [lesson.status for lesson in course.lessons] == [LessonStatus.READY] * 2
    second = runner.invoke(args=["demo", "seed"])
    assert "demo-auditor" in second.output
    assert count_rows(fresh_app, User) == created


def test_demo_seed_never_runs_with_demo_content_off(runner, fresh_app):
    fresh_app.config["DEMO_CONTENT"] = False
    try:
        result = runner.invoke(args=["demo", "seed"])
    finally:
        fresh_app.config["DEMO_CONTENT"] = True
    assert "off" in result.output
    assert count_rows(fresh_app, User) == 0
