"""The programmes page: city staff list a year's programmes; administrators add and change
them, every field checked and every change in the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.bureau.models import Programme
from app.extensions import db
from app.identity.models import Role
from tests.conftest import csrf_from, make_staff, sign_in_page


@pytest.fixture(autouse=True)
def parts_unlinked(fresh_app) -> Iterator[None]:
    """The cleanup empties tables whole; a part refers to its programme (ON DELETE RESTRICT),
    so the links go first."""
    yield
    with fresh_app.app_context():
        db.session.execute(sa.update(Programme).values(parent_id=None))
        db.session.commit()


def make_officer(app, username: str, district: str = "500103") -> int:
    return make_staff(app, Role.DISTRICT_OFFICER, username, district=district)


def signed_in(client, app, role: Role = Role.ADMIN, username: str = "admin1") -> str:
    if role is Role.DISTRICT_OFFICER:
        make_officer(app, username)
    else:
        make_staff(app, role, username)
    sign_in_page(client, username)
    return csrf_from(client.get("/admin/programmes").get_data(as_text=True))


def post(client, token: str, url: str = "/admin/programmes", **fields):
    data = {"csrf_token": token, "year": "2026", "target_trainings": "", "budget_yuan": ""}
    data.update(fields)
    return client.post(url, data=data)


def programme_rows(app) -> list[Programme]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Programme).order_by(Programme.id)))
        db.session.expunge_all()
        return rows


def audit_actions(app, prefix: str) -> list[dict]:
    """The details of the audit entries whose action begins with `prefix`, oldest first."""
    with app.app_context():
        return [
            json.loads(e.detail)
            for e in db.session.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.action.like(f"{prefix}%"))
                .order_by(AuditEntry.seq)
            )
        ]


def test_an_admin_adds_a_programme_and_a_part_of_it(client, fresh_app):
    token = signed_in(client, fresh_app)
    response = post(
        client,
        token,
        name="贫困劳动力",
        target_trainings="15,000",
        target_groups=["poor_labourer", "migrant_worker"],
        occupation_codes="4-10-01-06, 6-31-01-03",
        budget_yuan="1200000.50",
    )
    assert response.status_code == 303
    parent = programme_rows(fresh_app)[0]
    assert (parent.year, parent.target_trainings, parent.budget_yuan) == (
        2026,
        15000,
        Decimal("1200000.50"),
    )
    assert parent.target_groups == ["poor_labourer", "migrant_worker"]
    assert parent.occupation_codes == ["4-10-01-06", "6-31-01-03"]
    assert (
        post(
            client, token, name="鲁渝协作", parent_id=str(parent.id), target_trainings="3500"
        ).status_code
        == 303
    )
    page = client.get("/admin/programmes?year=2026").get_data(as_text=True)
    assert "鲁渝协作" in page and "15,000" in page and "3,500" in page
    created = audit_actions(fresh_app, "programme.create")
    assert [e["name"] for e in created] == ["贫困劳动力", "鲁渝协作"]


def test_bad_fields_are_a_422_with_every_mistake_and_nothing_saved(client, fresh_app):
    token = signed_in(client, fresh_app)
    response = post(
        client,
        token,
        name="",
        year="nineteen",
        target_trainings="-5",
        target_groups=["astronauts"],
        occupation_codes="9-99-99-99 4-10-01",
        budget_yuan="12.345",
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in (
        "name",
        "year",
        "target_trainings",
        "target_groups",
        "occupation_codes",
        "budget_yuan",
    ):
        assert f'id="e-{field}"' in page, field
    assert "9-99-99-99" in page  # the unknown code is named
    assert programme_rows(fresh_app) == []
    assert audit_actions(fresh_app, "programme") == []


def test_names_are_unique_within_a_year_and_a_part_stays_within_its_programme(client, fresh_app):
    token = signed_in(client, fresh_app)
    assert post(client, token, name="家政服务人员", target_trainings="100").status_code == 303
    parent_id = programme_rows(fresh_app)[0].id
    assert post(client, token, name="家政服务人员").status_code == 422
    assert post(client, token, name="家政服务人员", year="2027").status_code == 303
    too_big = post(client, token, name="月嫂", parent_id=str(parent_id), target_trainings="101")
    assert too_big.status_code == 422
    other_year = post(client, token, name="月嫂", year="2027", parent_id=str(parent_id))
    assert other_year.status_code == 422
    assert post(client, token, name="月嫂", parent_id="banana").status_code == 422
    assert len(programme_rows(fresh_app)) == 2


def test_an_admin_changes_a_programme_and_the_log_keeps_before_and_after(client, fresh_app):
    token = signed_in(client, fresh_app)
    post(client, token, name="医疗护理员", target_trainings="10000")
    row = programme_rows(fresh_app)[0]
    form = client.get(f"/admin/programmes?edit={row.id}").get_data(as_text=True)
    assert 'value="医疗护理员"' in form
    url = f"/admin/programmes?edit={row.id}"
    response = post(client, token, url, name="医疗护理员", target_trainings="12000")
    assert response.status_code == 303
    assert programme_rows(fresh_app)[0].target_trainings == 12000
    [entry] = audit_actions(fresh_app, "programme.update")
    assert entry == {"target_trainings": {"from": 10000, "to": 12000}}
    assert post(client, token, url, name="医疗护理员", target_trainings="x").status_code == 422
    assert programme_rows(fresh_app)[0].target_trainings == 12000


def test_a_programme_with_parts_cannot_become_a_part(client, fresh_app):
    token = signed_in(client, fresh_app)
    post(client, token, name="甲", target_trainings="100")
    post(client, token, name="乙", target_trainings="100")
    first, second = programme_rows(fresh_app)
    post(client, token, name="甲一", parent_id=str(first.id))
    url = f"/admin/programmes?edit={first.id}"
    assert post(client, token, url, name="甲", parent_id=str(second.id)).status_code == 422
    assert post(client, token, url, name="甲", parent_id=str(first.id)).status_code == 422


def test_auditors_and_district_officers_read_but_cannot_change(client, fresh_app):
    token = signed_in(client, fresh_app, Role.AUDITOR, "auditor1")
    page = client.get("/admin/programmes")
    assert page.status_code == 200 and 'name="target_trainings"' not in page.get_data(as_text=True)
    assert post(client, token, name="高危行业企业职工").status_code == 403
    officer = fresh_app.test_client()
    officer_token = signed_in(officer, fresh_app, Role.DISTRICT_OFFICER, "officer1")
    assert officer.get("/admin/programmes").status_code == 200
    assert post(officer, officer_token, name="高危行业企业职工").status_code == 403
    assert programme_rows(fresh_app) == []


def test_trainees_and_visitors_are_kept_out(client, fresh_app):
    assert client.get("/admin/programmes").status_code == 302  # to the sign-in page


def test_the_command_lists_a_years_programmes(client, fresh_app, runner):
    token = signed_in(client, fresh_app)
    post(client, token, name="贫困劳动力", target_trainings="15000", budget_yuan="100")
    parent = programme_rows(fresh_app)[0]
    post(client, token, name="鲁渝协作", parent_id=str(parent.id), target_trainings="3500")
    listed = runner.invoke(args=["bureau", "programmes", "--year", "2026"])
    assert listed.exit_code == 0, listed.output
    assert "贫困劳动力" in listed.output and "15,000" in listed.output
    assert "鲁渝协作 (part of 贫困劳动力)" in listed.output
    refused = runner.invoke(args=["bureau", "programmes", "--year", "99999"])
    assert refused.exit_code == 2 and "--year" in refused.output
    empty = runner.invoke(args=["bureau", "programmes", "--year", "2030"])
    assert "no programmes for 2030" in empty.output
