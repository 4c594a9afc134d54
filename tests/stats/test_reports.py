"""Monthly reports: frozen once from the records, never changed, corrected only as a new
version with its reason; the schedule, the commands and the pages (a district officer sees
only their district)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.bureau.models import Programme, Target
from app.catalog.models import Occupation
from app.courses.models import Course, CourseStatus, Lesson, LessonStatus
from app.errors import Invalid, NotFound
from app.extensions import db
from app.identity.models import Role, User
from app.jobs import schedule, when
from app.learning.models import Enrollment
from app.platforms.models import Platform
from app.stats import reports
from app.stats.models import StatReport
from tests.conftest import csrf_from, make_staff, make_trainee, sign_in_page
from tests.subsidy.test_queue_rows import id_number

A, B = "500101", "500103"
TZ = ZoneInfo("Asia/Shanghai")
PERIOD = "2026-03"


def local(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=TZ).astimezone(UTC)


def build(app) -> dict[str, int]:
    """Two trainees in A, one in B, each enrolled in March 2026 in one programme."""
    people = {
        "a1": make_trainee(app, id_number(301), phone="13900000301", name="甲一"),
        "a2": make_trainee(app, id_number(302), phone="13900000302", name="甲二"),
        "b1": make_trainee(app, id_number(303), phone="13900000303", name="乙一"),
    }
    with app.app_context():
        for key, code in (("a1", A), ("a2", A), ("b1", B)):
            db.session.get(User, people[key]).district_code = code
        programme = Programme(year=2026, name="家政服务人员", target_trainings=100)
        platform = Platform(name="万州学堂", district_code=A)
        db.session.add_all([programme, platform])
        db.session.flush()
        course = Course(
            platform_id=platform.id,
            occupation_code=db.session.scalar(sa.select(Occupation.code).limit(1)),
            title="家政课程",
            hours=Decimal("16"),
            status=CourseStatus.PUBLISHED,
            published_at=local(1, 5),
            district_code=A,
            programme_id=programme.id,
        )
        course.lessons.append(Lesson(position=1, title="第1课", status=LessonStatus.READY))
        db.session.add(course)
        db.session.flush()
        for key, day in (("a1", 3), ("a2", 4), ("b1", 5)):
            db.session.add(
                Enrollment(
                    trainee_id=people[key],
                    course_id=course.id,
                    programme_id=programme.id,
                    created_at=local(3, day),
                )
            )
        db.session.commit()
        return {**people, "course": course.id, "programme": programme.id}


def enrol_late(app, course_id: int, programme_id: int) -> None:
    """A record of March that arrives after the freeze: a new trainee of B enrolled."""
    trainee_id = make_trainee(app, id_number(304), phone="13900000304", name="乙二")
    with app.app_context():
        db.session.get(User, trainee_id).district_code = B
        db.session.add(
            Enrollment(
                trainee_id=trainee_id,
                course_id=course_id,
                programme_id=programme_id,
                created_at=local(3, 30),
            )
        )
        db.session.commit()


def stored(app, version: int) -> tuple[bytes, str]:
    with app.app_context():
        report = db.session.scalar(
            sa.select(StatReport).where(StatReport.period == PERIOD, StatReport.version == version)
        )
        return reports.canonical(report.content), report.sha256


def test_frozen_report_never_changes_and_correction_recomputes(fresh_app):
    world = build(fresh_app)
    with fresh_app.test_request_context():
        report = reports.freeze_month(PERIOD)
        db.session.commit()
        content = report.content
        assert content["city"]["enrolments"] == 3
        assert content["by_district"][A]["enrolments"] == 2
        assert content["by_district"][B]["enrolments"] == 1
        assert content["by_programme"][str(world["programme"])]["enrolments"] == 3
        assert {"key": "enrolments", "version": 1, "unit": "count"} in content["figures"]
        assert any(d["code"] == A for d in content["districts"])
        assert content["programmes"][0]["name"] == "家政服务人员"
    before, digest = stored(fresh_app, 1)
    assert hashlib.sha256(before).hexdigest() == digest
    assert json.loads(before) == json.loads(json.dumps(json.loads(before), sort_keys=True))

    # Records change after the freeze: a late enrolment, a trainee moves district, a
    # programme is renamed.
    enrol_late(fresh_app, world["course"], world["programme"])
    with fresh_app.app_context():
        db.session.get(User, world["a2"]).district_code = B
        db.session.get(Programme, world["programme"]).name = "家政服务（新）"
        db.session.commit()
        # Freezing again is a no-op.
        again = reports.freeze_month(PERIOD)
        db.session.commit()
        assert again.version == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StatReport)) == 1

    after, digest_after = stored(fresh_app, 1)
    assert after == before
    assert digest_after == digest

    with fresh_app.test_request_context():
        admin = db.session.get(User, make_staff(fresh_app, Role.ADMIN, "admin1"))
        corrected = reports.correct(PERIOD, "迟报的报名", admin)
        db.session.commit()
        assert corrected.version == 2
        assert corrected.reason == "迟报的报名"
        assert corrected.frozen_by == admin.id
        assert corrected.content["city"]["enrolments"] == 4
        assert corrected.content["by_district"][A]["enrolments"] == 1
        assert corrected.content["by_district"][B]["enrolments"] == 3
        assert corrected.content["programmes"][0]["name"] == "家政服务（新）"
    second, digest2 = stored(fresh_app, 2)
    assert second != before and digest2 != digest
    assert stored(fresh_app, 1) == (before, digest)

    with fresh_app.app_context():
        logged = {
            (e.action, json.loads(e.detail)["sha256"], json.loads(e.detail)["version"])
            for e in db.session.scalars(
                sa.select(AuditEntry).where(AuditEntry.action.like("stats.report_%"))
            )
        }
    assert logged == {
        ("stats.report_frozen", digest, 1),
        ("stats.report_corrected", digest2, 2),
    }


def test_correction_needs_a_reason_and_a_frozen_month(fresh_app):
    build(fresh_app)
    with fresh_app.test_request_context():
        with pytest.raises(NotFound):
            reports.correct(PERIOD, "因为", None)
        reports.freeze_month(PERIOD)
        db.session.commit()
        with pytest.raises(Invalid):
            reports.correct(PERIOD, "   ", None)
        db.session.rollback()
        assert len(reports.versions(PERIOD)) == 1


def test_a_concurrent_freeze_loses_to_the_unique_version(fresh_app):
    """Another run wrote version 1 first: this run returns it and writes nothing else."""
    build(fresh_app)
    with fresh_app.app_context():
        db.session.add(StatReport(period=PERIOD, version=1, content={"x": 1}, sha256="0" * 64))
        db.session.commit()
    with fresh_app.test_request_context():
        original = reports._write(PERIOD, 1, {"y": 2}, None, "")
        assert original is None
        report = reports.freeze_month(PERIOD)
        db.session.commit()
        assert report.content == {"x": 1}
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StatReport)) == 1


def test_schedule_freezes_the_previous_month_once(fresh_app, monkeypatch):
    build(fresh_app)
    task = schedule.TASKS["stats_freeze"]
    assert task.setting == "STATS_FREEZE_AT"
    rule = when.parse(fresh_app.config["STATS_FREEZE_AT"])
    assert isinstance(rule, when.Calendar) and rule.period == "monthly" and rule.day == 1
    assert reports.previous_month(date(2026, 4, 1)) == PERIOD
    assert reports.previous_month(date(2026, 1, 1)) == "2025-12"
    monkeypatch.setattr(reports, "today_local", lambda: date(2026, 4, 1))
    with fresh_app.app_context():
        assert task.fn() == 1
        assert task.fn() == 0
        [report] = reports.versions(PERIOD)
        assert report.frozen_by is None
        assert report.content["city"]["enrolments"] == 3


def test_commands_freeze_and_correct(fresh_app, runner):
    build(fresh_app)
    result = runner.invoke(args=["stats", "freeze", "--month", PERIOD])
    assert result.exit_code == 0, result.output
    assert "frozen: version 1" in result.output
    result = runner.invoke(args=["stats", "freeze", "--month", PERIOD])
    assert "already frozen" in result.output
    result = runner.invoke(args=["stats", "correct", "--month", PERIOD])
    assert result.exit_code != 0
    result = runner.invoke(args=["stats", "correct", "--month", PERIOD, "--reason", "复核"])
    assert result.exit_code == 0, result.output
    assert "version 2" in result.output
    with fresh_app.app_context():
        labels = set(
            db.session.scalars(
                sa.select(AuditEntry.actor_label).where(AuditEntry.action.like("stats.report_%"))
            )
        )
    assert labels == {"cli"}
    result = runner.invoke(args=["stats", "freeze", "--month", "2026-13"])
    assert result.exit_code != 0


def officer(app, code: str, username: str) -> int:
    return make_staff(app, Role.DISTRICT_OFFICER, username, district=code)


def test_district_officer_sees_only_their_district(fresh_app, client):
    build(fresh_app)
    with fresh_app.app_context():
        reports.freeze_month(PERIOD)
        db.session.commit()
        names = {
            code: db.session.scalar(
                sa.text("select name from district where code = :c"), {"c": code}
            )
            for code in (A, B)
        }
    officer(fresh_app, A, "officer-a")
    sign_in_page(client, "officer-a")
    listing = client.get("/stats/reports")
    assert listing.status_code == 200 and PERIOD in listing.get_data(as_text=True)
    page = client.get(f"/stats/reports/{PERIOD}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert names[A] in html and names[B] not in html
    assert "corrections" not in html  # no correction form
    csv = client.get(f"/stats/reports/{PERIOD}/download?format=csv").get_data(as_text=True)
    assert names[A] in csv and names[B] not in csv
    xlsx = client.get(f"/stats/reports/{PERIOD}/download?format=xlsx&version=1")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    assert client.get("/stats/quarters?year=2026").status_code == 200
    assert client.get(f"/stats/quarters?year=2026&district={B}").status_code == 403
    token = csrf_from(html)
    refused = client.post(
        f"/stats/reports/{PERIOD}/corrections", data={"reason": "x", "csrf_token": token}
    )
    assert refused.status_code == 403


def test_admin_corrects_from_the_page_with_a_reason(fresh_app, client):
    build(fresh_app)
    with fresh_app.app_context():
        reports.freeze_month(PERIOD)
        db.session.commit()
        names = {
            code: db.session.scalar(
                sa.text("select name from district where code = :c"), {"c": code}
            )
            for code in (A, B)
        }
    make_staff(fresh_app, Role.ADMIN, "admin1")
    sign_in_page(client, "admin1")
    html = client.get(f"/stats/reports/{PERIOD}").get_data(as_text=True)
    assert names[A] in html and names[B] in html
    token = csrf_from(html)
    client.post(f"/stats/reports/{PERIOD}/corrections", data={"reason": " ", "csrf_token": token})
    with fresh_app.app_context():
        assert len(reports.versions(PERIOD)) == 1
    done = client.post(
        f"/stats/reports/{PERIOD}/corrections", data={"reason": "复核更正", "csrf_token": token}
    )
    assert done.status_code == 302 and "version=2" in done.headers["Location"]
    without_token = client.post(f"/stats/reports/{PERIOD}/corrections", data={"reason": "再次"})
    assert without_token.status_code in (400, 403)
    with fresh_app.app_context():
        assert [r.version for r in reports.versions(PERIOD)] == [1, 2]
    page = client.get(f"/stats/reports/{PERIOD}?version=2").get_data(as_text=True)
    assert "复核更正" in page
    with fresh_app.app_context():
        db.session.add(Target(year=2026, figure_key="enrolments", value=Decimal(10)))
        db.session.commit()
    quarters = client.get("/stats/quarters?year=2026").get_data(as_text=True)
    assert "一季度" in quarters  # the pages speak Chinese by default
    assert re.search(r">3</td>\s*<td[^>]*>0</td>\s*<td[^>]*>0</td>\s*<td[^>]*>0</td>", quarters)
    assert "30.0%" in quarters  # 3 enrolments of a target of 10
    with fresh_app.test_request_context():
        from app.stats.report_views import quarter_values

        assert quarter_values(2026, None)["enrolments"] == [3, 0, 0, 0]
        assert quarter_values(2026, A)["enrolments"] == [2, 0, 0, 0]
        assert quarter_values(2026, None)["trainees"] == [3, 0, 0, 0]
        assert quarter_values(2026, A)["occupations_with_courses"] == [1, 1, 1, 1]
