"""Key groups: trainees declare theirs on the profile; an administrator or the trainee's
district officer verifies or adds one; every kind and source has a label in both languages."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask_babel import force_locale

from app.audit.models import AuditEntry
from app.bureau.models import GroupSource, TraineeGroup, TraineeGroupKind
from app.extensions import db
from app.identity.models import Role, User
from app.labels import LABELS, label
from tests.bureau.test_trainee_district import enrolled_trainee, staff_browser
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, csrf_from, make_trainee, sign_in_page
from tests.subsidy.test_queue_rows import id_number


def groups(app, user_id: int) -> dict[str, tuple[str, int | None]]:
    with app.app_context():
        rows = db.session.scalars(sa.select(TraineeGroup).where(TraineeGroup.user_id == user_id))
        return {row.kind.value: (row.source.value, row.recorded_by) for row in rows}


def test_every_group_and_source_has_a_label_in_both_languages(fresh_app):
    with fresh_app.test_request_context():
        for code in [*TraineeGroupKind, *GroupSource]:
            assert code.value in LABELS, code
            with force_locale("en"):
                english = label(code)
            assert english != code.value and "_" not in english
    assert "poor_labourer" in LABELS and "staff_verified" in LABELS


def test_a_trainee_declares_and_removes_their_own_groups(client, fresh_app):
    user_id = make_trainee(fresh_app, district="500101")
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    page = client.get("/profile").get_data(as_text=True)
    assert 'action="/profile/groups"' in page
    token = csrf_from(page)
    client.post("/profile/groups", data={"kind": "migrant_worker", "csrf_token": token})
    client.post("/profile/groups", data={"kind": "veteran", "csrf_token": token})
    client.post("/profile/groups", data={"kind": "veteran", "csrf_token": token})  # once
    refused = client.post("/profile/groups", data={"kind": "astronaut", "csrf_token": token})
    assert refused.status_code == 302
    assert groups(fresh_app, user_id) == {
        "migrant_worker": ("self_declared", None),
        "veteran": ("self_declared", None),
    }
    client.set_cookie("lang", "en")
    shown = client.get("/profile").get_data(as_text=True)
    assert "Migrant worker" in shown and "Declared by the trainee" in shown
    client.post("/profile/groups/remove", data={"kind": "veteran", "csrf_token": token})
    assert set(groups(fresh_app, user_id)) == {"migrant_worker"}


def test_staff_verify_a_group_and_the_trainee_cannot_remove_it(fresh_app):
    user_id, enrollment_id = enrolled_trainee(fresh_app, "500101", 501)
    trainee = fresh_app.test_client()
    sign_in_page(trainee, id_number(501), TRAINEE_PASSWORD)
    token = csrf_from(trainee.get("/profile").get_data(as_text=True))
    trainee.post("/profile/groups", data={"kind": "unemployed", "csrf_token": token})

    officer = staff_browser(fresh_app, Role.DISTRICT_OFFICER, "officer-a", "500101")
    page = officer.get(f"/audit/enrollments/{enrollment_id}").get_data(as_text=True)
    assert f'action="/audit/trainees/{user_id}/groups"' in page
    staff_token = csrf_from(page)
    url = f"/audit/trainees/{user_id}/groups"
    officer.post(url, data={"kind": "unemployed", "csrf_token": staff_token})
    officer.post(url, data={"kind": "disabled", "csrf_token": staff_token})
    with fresh_app.app_context():
        officer_id = db.session.scalar(sa.select(User.id).where(User.username == "officer-a"))
        entries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "trainee.group")
        ).all()
        details = [json.loads(entry.detail) for entry in entries]
    assert groups(fresh_app, user_id) == {
        "unemployed": ("staff_verified", officer_id),
        "disabled": ("staff_verified", officer_id),
    }
    assert {(d["kind"], d["from"]) for d in details} == {
        ("unemployed", "self_declared"),
        ("disabled", None),
    }
    removed = trainee.post(
        "/profile/groups/remove", data={"kind": "unemployed", "csrf_token": token}
    )
    assert removed.status_code == 302
    assert "unemployed" in groups(fresh_app, user_id)  # staff's record stays


def test_staff_of_another_district_or_a_city_auditor_cannot_verify(fresh_app):
    user_id, _ = enrolled_trainee(fresh_app, "500101", 502)
    other = staff_browser(fresh_app, Role.DISTRICT_OFFICER, "officer-b", "500103")
    token = csrf_from(other.get("/audit").get_data(as_text=True))
    url = f"/audit/trainees/{user_id}/groups"
    assert other.post(url, data={"kind": "veteran", "csrf_token": token}).status_code == 404
    auditor = staff_browser(fresh_app, Role.AUDITOR, "auditor1")
    token = csrf_from(auditor.get("/audit").get_data(as_text=True))
    assert auditor.post(url, data={"kind": "veteran", "csrf_token": token}).status_code == 403
    admin = staff_browser(fresh_app, Role.ADMIN, "chief")
    token = csrf_from(admin.get("/audit").get_data(as_text=True))
    assert admin.post(url, data={"kind": "veteran", "csrf_token": token}).status_code == 302
    assert groups(fresh_app, user_id)["veteran"][0] == "staff_verified"
