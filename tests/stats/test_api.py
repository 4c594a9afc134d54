"""GET /api/v1/stats/summary (and .csv, .xlsx): the contract, the district scope, the checks."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.identity.models import Role, User
from app.stats import rollup
from app.stats.figures import FIGURES
from tests.conftest import TRAINEE_PASSWORD, api_token, bearer, make_staff
from tests.stats.test_figures import YEAR, A, B, world  # noqa: F401  (the fixture)
from tests.subsidy.test_queue_rows import id_number

URL = "/api/v1/stats/summary"


@pytest.fixture
def rolled(fresh_app, world):  # noqa: F811
    with fresh_app.app_context():
        rollup.roll_up(YEAR)
        db.session.commit()
    return world


def officer_token(app, client, district: str = A, username: str = "officer1") -> str:
    make_staff(app, Role.DISTRICT_OFFICER, username, district=district)
    return api_token(client, username, "Audit2026ok")


def admin_token(app, client) -> str:
    make_staff(app, Role.ADMIN, "admin1")
    return api_token(client, "admin1", "Audit2026ok")


def test_summary_gives_every_figure_with_its_definition_version(fresh_app, client, rolled):
    token = admin_token(fresh_app, client)
    response = client.get(f"{URL}?year={YEAR}", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"year", "district", "figures", "targets"}
    assert body["year"] == YEAR and body["district"] is None
    assert [f["key"] for f in body["figures"]] == list(FIGURES)
    values = {f["key"]: f["value"] for f in body["figures"]}
    assert values["enrolments"] == 7 and values["trainees"] == 4
    assert values["subsidised_trainings"] == 5 and values["subsidy_yuan"] == 2801.0
    assert all(f["definition_version"] == FIGURES[f["key"]].version for f in body["figures"])

    programme = rolled.programmes["p1"]
    scoped = client.get(
        f"{URL}?year={YEAR}&district={A}&programme={programme}", headers=bearer(token)
    ).get_json()
    assert scoped["district"] == A and scoped["programme"] == programme
    assert {f["key"]: f["value"] for f in scoped["figures"]}["enrolments"] == 2  # e1, e3
    whole = client.get(f"{URL}?year={YEAR}&programme={programme}", headers=bearer(token))
    assert whole.get_json()["targets"] == [
        {"key": "subsidised_trainings", "target": 35000, "value": 2}  # e1, e6
    ]


def test_a_district_officer_sees_their_own_district_and_no_other(fresh_app, client, rolled):
    token = officer_token(fresh_app, client)
    own = client.get(f"{URL}?year={YEAR}", headers=bearer(token))
    assert own.status_code == 200
    assert own.get_json()["district"] == A
    assert {f["key"]: f["value"] for f in own.get_json()["figures"]}["trainees"] == 2
    assert client.get(f"{URL}?year={YEAR}&district={A}", headers=bearer(token)).status_code == 200
    for suffix in ("", ".csv", ".xlsx"):
        response = client.get(f"{URL}{suffix}?year={YEAR}&district={B}", headers=bearer(token))
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "out_of_scope"


def test_a_district_officer_without_a_district_sees_nothing(fresh_app, client, rolled):
    token = officer_token(fresh_app, client)
    with fresh_app.app_context():
        # An account can lose its district (the data was cleared by hand): no figures then.
        officer = db.session.scalar(sa.select(User).where(User.username == "officer1"))
        officer.district_code = None
        db.session.commit()
    response = client.get(f"{URL}?year={YEAR}", headers=bearer(token))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "out_of_scope"


def test_trainees_and_strangers_get_no_figures(fresh_app, client, rolled):
    assert client.get(f"{URL}?year={YEAR}").status_code == 401
    trainee = api_token(client, id_number(201), TRAINEE_PASSWORD)
    response = client.get(f"{URL}?year={YEAR}", headers=bearer(trainee))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "year"),
        ("year=twenty", "year"),
        ("year=1999", "year"),
        (f"year={YEAR}&district=999999", "district"),
        (f"year={YEAR}&programme=abc", "programme"),
        (f"year={YEAR}&programme=987654", "programme"),
    ],
)
def test_bad_parameters_are_invalid_with_the_field_named(fresh_app, client, query, field):
    token = admin_token(fresh_app, client)
    for suffix in ("", ".csv"):
        response = client.get(f"{URL}{suffix}?{query}", headers=bearer(token))
        assert response.status_code == 422, response.get_data(as_text=True)
        error = response.get_json()["error"]
        assert error["code"] == "invalid" and field in error["fields"]


def test_csv_and_xlsx_hold_one_row_per_figure(fresh_app, client, rolled):
    token = admin_token(fresh_app, client)
    response = client.get(f"{URL}.csv?year={YEAR}&district={B}", headers=bearer(token))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0] == ["key", "label", "definition_version", "value", "target"]
    assert [r[0] for r in rows[1:]] == list(FIGURES)
    assert {r[0]: r[3] for r in rows[1:]}["trainees"] == "1"

    response = client.get(f"{URL}.xlsx?year={YEAR}", headers=bearer(token))
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    table = [[c.value for c in row] for row in sheet.iter_rows()]
    assert table[0] == ["key", "label", "definition_version", "value", "target"]
    assert {r[0]: r[3] for r in table[1:]}["enrolments"] == 7
