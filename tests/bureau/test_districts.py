"""The district list, and courses and enrolments filed by district and programme."""

from __future__ import annotations

import json

import sqlalchemy as sa

from app.bureau import service as bureau
from app.bureau.models import District, Programme
from app.courses.models import Course, CourseStatus
from app.extensions import db
from app.identity.models import Role
from app.learning.models import Enrollment
from app.platforms.models import Platform
from tests.conftest import (
    api_token,
    bearer,
    csrf_from,
    make_platform,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.courses.helpers import create_course


def test_the_list_holds_every_district_and_zone_once_and_reloads_without_change(fresh_app):
    with fresh_app.app_context():
        codes = [d.code for d in bureau.districts()]
        assert len(codes) == len(set(codes)) == 41  # 26 districts, 12 counties, 3 zones
        assert codes[0] == "500101" and "500103" in codes  # 万州区 first, 渝中区 present
        zones = {d.name for d in bureau.districts() if d.kind.value == "zone"}
        assert zones == {"两江新区", "重庆高新区", "万盛经开区"}
        again = bureau.load_districts()
        assert (again.added, again.updated) == (0, 0)
        db.session.rollback()


def test_districts_api_lists_codes_and_names_in_both_languages(client, fresh_app):
    body = client.get("/api/v1/districts").get_json()
    first = body["items"][0]
    assert first == {
        "code": "500101",
        "name": "万州区",
        "name_en": "Wanzhou District",
        "kind": "district",
    }
    assert len(body["items"]) == 41


def programme(app, **fields) -> int:
    with app.app_context():
        row = Programme(year=2026, name=fields.pop("name", "高危行业企业职工"), **fields)
        db.session.add(row)
        db.session.commit()
        return row.id


def test_a_course_is_filed_under_a_district_and_a_programme(client, fresh_app):
    token = make_platform(fresh_app)
    covering = programme(fresh_app, occupation_codes=["6-31-01-03"])
    course_id = create_course(client, token, district="500112", programme_id=covering)
    body = client.get(f"/api/v1/courses/{course_id}", headers=bearer(token)).get_json()
    assert (body["district"], body["programme_id"]) == ("500112", covering)


def test_a_course_without_a_district_takes_its_platforms(client, fresh_app):
    token = make_platform(fresh_app)
    with fresh_app.app_context():
        db.session.execute(sa.update(Platform).values(district_code="500103"))
        db.session.commit()
    course_id = create_course(client, token)
    with fresh_app.app_context():
        assert db.session.get(Course, course_id).district_code == "500103"


def test_bad_district_or_programme_is_422_and_creates_nothing(client, fresh_app):
    token = make_platform(fresh_app)
    elsewhere = programme(fresh_app, name="医疗护理员", occupation_codes=["4-14-01-02"])
    body = {"occupation_code": "6-31-01-03", "title": "低压电工", "hours": 8}
    for changes, field in (
        ({"district": "999999"}, "district"),
        ({"district": 500103}, "district"),
        ({"programme_id": 99999}, "programme_id"),
        ({"programme_id": "1"}, "programme_id"),
        ({"programme_id": elsewhere}, "programme_id"),  # does not cover electricians
    ):
        response = client.post("/api/v1/courses", json={**body, **changes}, headers=bearer(token))
        assert response.status_code == 422, changes
        assert field in response.get_json()["error"]["fields"], changes
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Course)) == 0


def test_an_enrolment_counts_towards_its_courses_programme(client, fresh_app):
    token = make_platform(fresh_app)
    covering = programme(fresh_app)
    course_id = create_course(client, token, programme_id=covering)
    with fresh_app.app_context():
        db.session.execute(
            sa.update(Course).where(Course.id == course_id).values(status=CourseStatus.PUBLISHED)
        )
        db.session.commit()
    make_trainee(fresh_app)
    trainee = api_token(client, "110105199003071239", "Study2026ok")
    response = client.post(f"/api/v1/courses/{course_id}/enrollments", headers=bearer(trainee))
    assert response.status_code in (200, 201), response.get_json()
    with fresh_app.app_context():
        enrollment = db.session.scalar(sa.select(Enrollment))
        assert enrollment.programme_id == covering
        assert db.session.get(District, "500103").name == "渝中区"


def test_admin_approves_a_platform_in_a_district_and_a_bad_district_is_a_form_error(
    client, fresh_app
):
    make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    listing = client.get("/admin/platforms")
    assert "万州区" in listing.get_data(as_text=True)  # the choice of districts
    form = {"name": "戊平台", "csrf_token": csrf_from(listing.get_data(as_text=True))}
    refused = client.post("/admin/platforms", data={**form, "district": "999999"})
    assert refused.status_code == 422
    assert "从列表中选择区县" in refused.get_data(as_text=True) or "Choose a district" in (
        refused.get_data(as_text=True)
    )
    assert client.post("/admin/platforms", data={**form, "district": "500112"}).status_code == 200
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(Platform.district_code)) == "500112"
    assert "渝北区" in client.get("/admin/platforms").get_data(as_text=True)


def test_admin_files_a_course_under_a_district_and_programme_with_an_audit_entry(client, fresh_app):
    from app.audit.models import AuditEntry
    from tests.catalog.helpers import add_course

    course_id = add_course(fresh_app, "低压电工作业")
    covering = programme(fresh_app, occupation_codes=["6-31-01-03"])
    elsewhere = programme(fresh_app, name="医疗护理员", occupation_codes=["4-14-01-02"])
    make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    page = client.get(f"/admin/courses/{course_id}").get_data(as_text=True)
    assert "高危行业企业职工" in page and "万州区" in page
    url = f"/admin/courses/{course_id}/filing"
    form = {"csrf_token": csrf_from(page)}
    refused = client.post(url, data={**form, "district": "500112", "programme_id": elsewhere})
    assert refused.status_code == 302
    with fresh_app.app_context():
        course = db.session.get(Course, course_id)
        assert (course.district_code, course.programme_id) == (None, None)
    client.post(url, data={**form, "district": "500112", "programme_id": str(covering)})
    with fresh_app.app_context():
        course = db.session.get(Course, course_id)
        assert (course.district_code, course.programme_id) == ("500112", covering)
        entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "course.filed"))
        assert json.loads(entry.detail)["to"] == {"district": "500112", "programme_id": covering}
