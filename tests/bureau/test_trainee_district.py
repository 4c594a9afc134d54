"""A trainee's district: chosen at registration (or once, later, on the profile), shown by
`/api/v1/me`, and corrected by an administrator or the trainee's district officer."""

from __future__ import annotations

import json
import re

import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.extensions import db
from app.identity import service as identity
from app.identity.models import Role, User
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    count_rows,
    csrf_from,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.subsidy.test_queue_rows import id_number

FORM = {
    "name": "王小明",
    "id_number": TRAINEE_ID,
    "phone": "13800138000",
    "password": "Study2026ok",
    "password_confirm": "Study2026ok",
}
API_BODY = {
    "name": "李四",
    "id_number": TRAINEE_ID,
    "phone": "13912345678",
    "password": TRAINEE_PASSWORD,
}


def district_of(app, user_id: int) -> str | None:
    with app.app_context():
        return db.session.get_one(User, user_id).district_code


def test_the_registration_page_asks_for_a_district_in_the_lists_order_and_language(client):
    html = client.get("/register").get_data(as_text=True)
    assert '<select id="f-district" name="district"' in html
    options = re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', html)
    assert options[0][0] == ""  # "choose a district" first, nothing chosen for the trainee
    assert options[1] == ("500101", "万州区") and options[3] == ("500103", "渝中区")
    assert len(options) == 42
    client.set_cookie("lang", "en")
    english = client.get("/register").get_data(as_text=True)
    assert '<option value="500101">Wanzhou District</option>' in english


def test_the_registration_page_requires_a_district_from_the_list(client, fresh_app):
    token = csrf_from(client.get("/register").get_data(as_text=True))
    for district in ("", "999999"):
        refused = client.post("/register", data={**FORM, "district": district, "csrf_token": token})
        assert refused.status_code == 422
        html = refused.get_data(as_text=True)
        assert 'id="e-district"' in html and 'value="王小明"' in html
    assert count_rows(fresh_app, User) == 0
    done = client.post("/register", data={**FORM, "district": "500112", "csrf_token": token})
    assert done.status_code == 302
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(User.district_code)) == "500112"
    profile = client.get("/profile").get_data(as_text=True)
    assert "渝北区" in profile and 'action="/profile/district"' not in profile


def test_the_api_takes_a_district_and_me_shows_it_with_its_name(client, fresh_app):
    response = client.post("/api/v1/auth/register", json={**API_BODY, "district": "500103"})
    assert response.status_code == 201
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    me = client.get("/api/v1/me", headers=bearer(token)).get_json()
    assert me["district"] == {"code": "500103", "name": "渝中区"}
    english = fresh_app.test_client().get(
        "/api/v1/me", headers={**bearer(token), "Accept-Language": "en"}
    )
    assert english.get_json()["district"]["name"] == "Yuzhong District"


def test_the_api_refuses_a_district_not_on_the_list_and_accepts_none(client, fresh_app):
    for bad in ("999999", 500103, ["500103"]):
        response = client.post("/api/v1/auth/register", json={**API_BODY, "district": bad})
        assert response.status_code == 422, bad
        assert "district" in response.get_json()["error"]["fields"]
    assert count_rows(fresh_app, User) == 0
    # Clients written before districts still register; the trainee chooses later.
    assert client.post("/api/v1/auth/register", json=API_BODY).status_code == 201
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    assert client.get("/api/v1/me", headers=bearer(token)).get_json()["district"] is None


def test_a_trainee_without_a_district_chooses_one_once_on_the_profile(client, fresh_app):
    user_id = make_trainee(fresh_app)
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    assert 'id="district-prompt"' in client.get("/learn").get_data(as_text=True)
    profile = client.get("/profile").get_data(as_text=True)
    assert 'action="/profile/district"' in profile and 'id="f-district"' in profile
    token = csrf_from(profile)
    bad = client.post("/profile/district", data={"district": "999999", "csrf_token": token})
    assert bad.status_code == 302 and district_of(fresh_app, user_id) is None
    client.post("/profile/district", data={"district": "500101", "csrf_token": token})
    assert district_of(fresh_app, user_id) == "500101"
    again = client.post("/profile/district", data={"district": "500103", "csrf_token": token})
    assert again.status_code == 403  # after the first choice only staff change it
    assert district_of(fresh_app, user_id) == "500101"
    assert 'id="district-prompt"' not in client.get("/learn").get_data(as_text=True)
    page = client.get("/profile").get_data(as_text=True)
    assert "万州区" in page and 'action="/profile/district"' not in page


def test_a_district_officers_profile_names_their_role_and_district(client, fresh_app):
    with fresh_app.test_request_context():
        identity.create_staff(
            Role.DISTRICT_OFFICER, "officer-a", "Audit2026ok", district_code="500101"
        )
        db.session.commit()
    sign_in_page(client, "officer-a")
    page = client.get("/profile")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "区县经办人员" in html or "District officer" in html
    assert "万州区" in html


# --- staff correct a trainee's district ---------------------------------------------------------


def enrolled_trainee(app, district: str, serial: int) -> tuple[int, int]:
    """A trainee of `district` with an enrolment (the desk page's address): (user, enrolment)."""
    from app.learning.models import Enrollment
    from tests.catalog.helpers import add_course

    user_id = make_trainee(
        app, id_number(serial), phone=f"1370000{serial:04d}", name="赵六", district=district
    )
    course_id = add_course(app, f"电工{serial}")
    with app.app_context():
        enrollment = Enrollment(trainee_id=user_id, course_id=course_id)
        db.session.add(enrollment)
        db.session.commit()
        return user_id, enrollment.id


def staff_browser(app, role: Role, username: str, district: str | None = None):
    with app.test_request_context():
        identity.create_staff(role, username, "Audit2026ok", district_code=district)
        db.session.commit()
    browser = app.test_client()
    sign_in_page(browser, username)
    return browser


def district_entries(app) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "trainee.district")
        ).all()
        return [{"actor": row.actor_id, **json.loads(row.detail)} for row in rows]


def test_an_admin_moves_a_trainee_with_a_reason_kept_in_the_audit_log(fresh_app):
    user_id, enrollment_id = enrolled_trainee(fresh_app, "500101", 401)
    admin = staff_browser(fresh_app, Role.ADMIN, "chief")
    page = admin.get(f"/audit/enrollments/{enrollment_id}").get_data(as_text=True)
    assert f'action="/audit/trainees/{user_id}/district"' in page and "万州区" in page
    token = csrf_from(page)
    url = f"/audit/trainees/{user_id}/district"
    unexplained = admin.post(url, data={"district": "500103", "reason": " ", "csrf_token": token})
    assert unexplained.status_code == 302
    assert district_of(fresh_app, user_id) == "500101" and district_entries(fresh_app) == []
    moved = admin.post(
        url, data={"district": "500103", "reason": "社保在渝中区缴纳。", "csrf_token": token}
    )
    assert moved.status_code == 302
    assert district_of(fresh_app, user_id) == "500103"
    with fresh_app.app_context():
        chief = db.session.scalar(sa.select(User.id).where(User.username == "chief"))
    assert district_entries(fresh_app) == [
        {"actor": chief, "from": "500101", "to": "500103", "reason": "社保在渝中区缴纳。"}
    ]


def test_a_district_officer_moves_their_trainee_out_but_cannot_pull_one_in(fresh_app):
    ours, ours_enrollment = enrolled_trainee(fresh_app, "500101", 402)
    theirs, _ = enrolled_trainee(fresh_app, "500103", 403)
    officer = staff_browser(fresh_app, Role.DISTRICT_OFFICER, "officer-a", "500101")
    page = officer.get(f"/audit/enrollments/{ours_enrollment}").get_data(as_text=True)
    token = csrf_from(page)
    pulled = officer.post(
        f"/audit/trainees/{theirs}/district",
        data={"district": "500101", "reason": "想调过来。", "csrf_token": token},
    )
    assert pulled.status_code == 404
    assert district_of(fresh_app, theirs) == "500103"
    moved = officer.post(
        f"/audit/trainees/{ours}/district",
        data={"district": "500103", "reason": "在渝中区工作。", "csrf_token": token},
    )
    assert moved.status_code == 302 and moved.headers["Location"].endswith("/audit")
    assert district_of(fresh_app, ours) == "500103"
    assert [e["to"] for e in district_entries(fresh_app)] == ["500103"]
    assert officer.get(f"/audit/enrollments/{ours_enrollment}").status_code == 404


def test_a_city_auditor_sees_the_district_but_cannot_change_it(fresh_app):
    user_id, enrollment_id = enrolled_trainee(fresh_app, "500101", 404)
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    auditor = fresh_app.test_client()
    sign_in_page(auditor, "auditor1")
    page = auditor.get(f"/audit/enrollments/{enrollment_id}").get_data(as_text=True)
    assert "万州区" in page and f"/audit/trainees/{user_id}/district" not in page
    refused = auditor.post(
        f"/audit/trainees/{user_id}/district",
        data={"district": "500103", "reason": "x", "csrf_token": csrf_from(page)},
    )
    assert refused.status_code == 403
    assert district_of(fresh_app, user_id) == "500101"
