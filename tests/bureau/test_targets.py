"""The targets grid: every staff role reads the year's targets per district; only an
administrator sets them, whole numbers only, each change audit-logged."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.bureau.models import Target
from app.extensions import db
from app.identity.models import Role
from tests.conftest import csrf_from, make_staff, sign_in_page


def make_officer(app, username: str, district: str = "500103") -> int:
    return make_staff(app, Role.DISTRICT_OFFICER, username, district=district)


def signed_in(client, app, role: Role = Role.ADMIN, username: str = "admin1") -> str:
    if role is Role.DISTRICT_OFFICER:
        make_officer(app, username)
    else:
        make_staff(app, role, username)
    sign_in_page(client, username)
    return csrf_from(client.get("/admin/targets").get_data(as_text=True))


def saved(app) -> dict[tuple[int, str, str], Decimal]:
    with app.app_context():
        return {
            (t.year, t.district_code, t.figure_key): t.value
            for t in db.session.scalars(sa.select(Target))
        }


def target_entries(app) -> list[dict]:
    with app.app_context():
        return [
            json.loads(e.detail)
            for e in db.session.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.action == "target.set")
                .order_by(AuditEntry.seq)
            )
        ]


def test_the_grid_lists_the_city_then_every_district_in_order(client, fresh_app):
    signed_in(client, fresh_app)
    page = client.get("/admin/targets?year=2026").get_data(as_text=True)
    assert 'name="t-city-online_trainings"' in page
    assert 'name="t-city-subsidised_trainings"' in page
    assert (
        page.index("t-city-online") < page.index("t-500101-online") < page.index("t-500102-online")
    )
    assert page.count('name="t-') == 2 * 42  # the city and 41 districts, two figures each


def test_an_admin_sets_changes_and_clears_targets_with_an_audit_entry_each(client, fresh_app):
    token = signed_in(client, fresh_app)
    response = client.post(
        "/admin/targets?year=2026",
        data={
            "csrf_token": token,
            "t-city-online_trainings": "100,000",
            "t-500101-online_trainings": "4000",
            "t-500101-subsidised_trainings": "",
        },
    )
    assert response.status_code == 303
    assert saved(fresh_app) == {
        (2026, "", "online_trainings"): Decimal("100000"),
        (2026, "500101", "online_trainings"): Decimal("4000"),
    }
    page = client.get("/admin/targets?year=2026").get_data(as_text=True)
    assert 'value="100000"' in page and 'value="4000"' in page
    client.post(
        "/admin/targets?year=2026",
        data={
            "csrf_token": token,
            "t-city-online_trainings": "100000",  # unchanged: no entry
            "t-500101-online_trainings": "",  # cleared
            "t-500102-subsidised_trainings": "0",
        },
    )
    assert saved(fresh_app) == {
        (2026, "", "online_trainings"): Decimal("100000"),
        (2026, "500102", "subsidised_trainings"): Decimal("0"),
    }
    entries = target_entries(fresh_app)
    assert [(e["district"], e["figure"], e["from"], e["to"]) for e in entries] == [
        ("", "online_trainings", None, 100000),
        ("500101", "online_trainings", None, 4000),
        ("500101", "online_trainings", 4000, None),
        ("500102", "subsidised_trainings", None, 0),
    ]


def test_bad_numbers_are_refused_with_the_form_and_nothing_changes(client, fresh_app):
    token = signed_in(client, fresh_app)
    for bad in ("-1", "1.5", "lots", "1e6", "9999999999"):
        response = client.post(
            "/admin/targets?year=2026",
            data={
                "csrf_token": token,
                "t-city-online_trainings": "100",
                "t-500101-online_trainings": bad,
            },
        )
        assert response.status_code == 422, bad
        page = response.get_data(as_text=True)
        assert 'id="e-t-500101-online_trainings"' in page
        assert f'value="{bad}"' in page  # what was typed stays, to be corrected
    assert saved(fresh_app) == {}
    assert target_entries(fresh_app) == []


def test_targets_are_kept_per_year(client, fresh_app):
    token = signed_in(client, fresh_app)
    for year, value in (("2026", "10"), ("2027", "20")):
        client.post(
            f"/admin/targets?year={year}",
            data={"csrf_token": token, "t-city-subsidised_trainings": value},
        )
    assert saved(fresh_app) == {
        (2026, "", "subsidised_trainings"): Decimal("10"),
        (2027, "", "subsidised_trainings"): Decimal("20"),
    }


def test_only_administrators_write_targets(client, fresh_app):
    token = signed_in(client, fresh_app)
    client.post(
        "/admin/targets?year=2026", data={"csrf_token": token, "t-city-online_trainings": "7"}
    )
    for role, username in ((Role.AUDITOR, "auditor1"), (Role.DISTRICT_OFFICER, "officer1")):
        reader = fresh_app.test_client()
        reader_token = signed_in(reader, fresh_app, role, username)
        page = reader.get("/admin/targets?year=2026")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert 'name="t-' not in html and re.search(r"<td class=\"num\">\s*7\s*</td>", html)
        refused = reader.post(
            "/admin/targets?year=2026",
            data={"csrf_token": reader_token, "t-city-online_trainings": "9"},
        )
        assert refused.status_code == 403
    assert saved(fresh_app) == {(2026, "", "online_trainings"): Decimal("7")}
    assert len(target_entries(fresh_app)) == 1
