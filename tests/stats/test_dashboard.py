"""The dashboard (/stats): its numbers are the service's, for the slice the reader may see, in
the reader's language, with every figure naming its definition."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from flask_babel import force_locale

from app.bureau.models import Programme, Target
from app.extensions import db
from app.identity.models import Role
from app.stats import service
from app.stats.figures import FIGURES, period_key
from app.stats.models import StatValue
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, make_staff, make_trainee, sign_in_page
from tests.test_page_sweep import problems

YEAR = 2026
HOME, OTHER = "500101", "500102"  # 万州区, 涪陵区


class Tables(HTMLParser):
    """Each table's cells by row slice and column figure (`data-slice`, `data-figure`), the
    four-ones values, and the charts' data."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict[str, dict[str, str]]] = {}
        self.table: str | None = None
        self.row: str | None = None
        self.cell: str | None = None
        self.text: list[str] = []
        self.ones: dict[str, str] = {}
        self.one: str | None = None
        self.json = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("id") or ""
            self.tables[self.table] = {}
        elif tag == "tr" and self.table is not None:
            self.row = a.get("data-slice")
        elif tag == "td" and self.row is not None and a.get("data-figure"):
            self.cell, self.text = a["data-figure"], []
        elif tag == "li" and (a.get("id") or "").startswith("one-"):
            self.one = a["id"][4:]
        elif tag == "span" and self.one and a.get("data-figure") == "value":
            self.cell, self.text = "one", []
        if a.get("data-charts"):
            self.json = a["data-charts"]

    def handle_endtag(self, tag):
        if tag in ("td", "span") and self.cell:
            value = "".join(self.text).strip()
            if self.cell == "one":
                self.ones[self.one or ""] = value
            else:
                self.tables[self.table or ""].setdefault(self.row or "", {})[self.cell] = value
            self.cell = None
        elif tag == "table":
            self.table = None
        elif tag == "li":
            self.one = None

    def handle_data(self, data):
        if self.cell:
            self.text.append(data)


def parse(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def plain(text: str) -> int | float | None:
    """A number as the page writes it (12,345 or 12,345.50) back to a number."""
    text = text.replace(",", "").rstrip("%").strip()
    if not text:
        return None
    return float(text) if "." in text else int(text)


def put(key: str, period: str, value: float, district: str = "", programme: int = 0) -> None:
    db.session.add(
        StatValue(
            figure_key=key,
            period=period,
            district_code=district,
            programme_id=programme,
            value=Decimal(str(value)),
            definition_version=FIGURES[key].version,
        )
    )


@pytest.fixture
def figures(fresh_app) -> int:
    """Known rows of a year: the city, two districts, one programme and the months; a city
    target for online trainings and a district target. Returns the programme's id."""
    with fresh_app.app_context():
        programme = Programme(year=YEAR, name="家政服务人员", target_trainings=35)
        db.session.add(programme)
        db.session.flush()
        city = {"active_platforms": 12, "occupations_with_courses": 87}
        for n, key in enumerate(FIGURES, 1):
            put(
                key, period_key(YEAR), city.get(key, 100 * n + 0.5 * (FIGURES[key].unit != "count"))
            )
            put(key, period_key(YEAR), 10 * n, HOME)
            put(key, period_key(YEAR), 20 * n, OTHER)
            put(key, period_key(YEAR), 7 * n, "", programme.id)
            put(key, period_key(YEAR), 3 * n, HOME, programme.id)
            for month in (1, 3, 12):
                put(key, period_key(YEAR, month), month * n)
                put(key, period_key(YEAR, month), month, HOME)
        db.session.add(Target(year=YEAR, figure_key="online_trainings", value=Decimal(400)))
        db.session.add(
            Target(year=YEAR, figure_key="online_trainings", district_code=HOME, value=40)
        )
        db.session.commit()
        return programme.id


def officer(app, username: str = "officer-a", district: str = HOME) -> None:
    make_staff(app, Role.DISTRICT_OFFICER, username, district=district)


def expected(app, district=None, programme=None, lang="en"):
    with app.test_request_context(), force_locale(lang):
        summary = service.summary(YEAR, district, programme)
        by = {
            by: service.breakdown(YEAR, by, list(FIGURES), district, programme)
            for by in ("district", "programme", "month")
        }
        labels = {key: str(figure.label) for key, figure in FIGURES.items()}
    return summary, by, labels


def check_breakdown(tables, table_id, rows):
    shown = tables[table_id]
    assert list(shown) == [str(row["slice"]) for row in rows]
    for row in rows:
        for figure, text in shown[str(row["slice"])].items():
            if figure != "target":
                assert plain(text) == row[figure], (table_id, row["slice"], figure)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_number_on_the_page_is_the_services(client, fresh_app, figures, lang):
    make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    client.get(f"/lang/{lang}")
    response = client.get(f"/stats?year={YEAR}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = parse(html)
    summary, by, labels = expected(fresh_app, lang=lang)

    values = {item["key"]: item["value"] for item in summary["figures"]}
    for key, cells in page.tables["table-figures"].items():
        assert plain(cells["value"]) == values[key], key
    assert set(page.tables["table-figures"]) == set(FIGURES)
    # The city set 400 online trainings: its own number, not the work plan's 100,000.
    assert page.tables["table-targets"]["online_trainings"]["target"] == "400"
    assert plain(page.tables["table-targets"]["online_trainings"]["percent"]) == int(
        values["online_trainings"] * 100 / 400
    )
    # No Target row for platforms: the work plan's ten.
    assert page.tables["table-targets"]["active_platforms"]["target"].startswith("10")
    for key in ("subsidised_trainings", "active_platforms", "occupations_with_courses"):
        assert plain(page.ones[key]) == values[key]

    check_breakdown(page.tables, "table-districts", by["district"])
    check_breakdown(page.tables, "table-programmes", by["programme"])
    assert len(page.tables["table-months"]) == 12
    check_breakdown(page.tables, "table-months", by["month"])
    assert page.tables["table-districts"][HOME]["target"] == "40"
    assert page.tables["table-programmes"][str(figures)]["target"] == "35"

    # The charts draw the same numbers as the tables, under the same translated names.
    charts = {c["id"]: c for c in json.loads(page.json)["charts"]}
    months = charts["chart-months"]["series"]
    assert months[0]["name"] == labels["online_trainings"]
    assert months[0]["data"] == [row["online_trainings"] for row in by["month"]]
    districts = charts["chart-districts"]
    assert districts["categories"] == [row["label"] for row in by["district"]]

    # Every figure names its definition and version; the page names labels, never keys.
    for key in FIGURES:
        assert f'href="/stats/definitions#{key}"' in html
        assert labels[key] in html
    visible = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
    for key in FIGURES:
        assert key not in visible, key
    assert not problems(html, "en")  # no raw code (untranslated words: the page sweep)
    if lang == "zh":
        assert "万州区" in visible and "3月" in visible
        assert "Wanzhou" not in visible
    else:
        assert "Wanzhou" in visible and "Mar" in visible
    # Exports of the same slice.
    assert f"/api/v1/stats/summary.csv?year={YEAR}" in html
    assert f"/api/v1/stats/summary.xlsx?year={YEAR}" in html


def test_a_slice_shows_the_slices_numbers_and_exports_it(client, fresh_app, figures):
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    sign_in_page(client, "auditor1")
    html = client.get(f"/stats?year={YEAR}&district={HOME}&programme={figures}").get_data(
        as_text=True
    )
    page = parse(html)
    summary, by, _ = expected(fresh_app, HOME, figures)
    values = {item["key"]: item["value"] for item in summary["figures"]}
    assert values["online_trainings"] == 3
    for key, cells in page.tables["table-figures"].items():
        assert plain(cells["value"]) == values[key], key
    check_breakdown(page.tables, "table-districts", by["district"])
    assert list(page.tables["table-districts"]) == [HOME]
    assert f"summary.csv?year={YEAR}&amp;district={HOME}&amp;programme={figures}" in html


def test_a_district_officer_sees_their_district_only(client, fresh_app, figures):
    officer(fresh_app)
    sign_in_page(client, "officer-a")
    response = client.get(f"/stats?year={YEAR}")
    assert response.status_code == 200
    page = parse(response.get_data(as_text=True))
    summary, by, _ = expected(fresh_app, HOME)
    values = {item["key"]: item["value"] for item in summary["figures"]}
    assert values["online_trainings"] == 10  # the district's row, not the city's 100
    assert plain(page.tables["table-figures"]["online_trainings"]["value"]) == 10
    assert list(page.tables["table-districts"]) == [HOME]
    check_breakdown(page.tables, "table-months", by["month"])
    assert page.tables["table-targets"]["online_trainings"]["target"] == "40"
    # Naming their own district is fine; another is refused.
    assert client.get(f"/stats?year={YEAR}&district={HOME}").status_code == 200
    refused = client.get(f"/stats?year={YEAR}&district={OTHER}")
    assert refused.status_code == 403


def test_the_page_is_for_staff_only(client, fresh_app, figures):
    assert client.get("/stats").status_code == 302  # to sign in
    make_trainee(fresh_app)
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    assert client.get("/stats").status_code == 403
    staff = fresh_app.test_client()
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    sign_in_page(staff, "auditor1")
    assert staff.get("/stats?year=1900").status_code == 422


def test_nav_links_follow_the_role(client, fresh_app):
    make_staff(fresh_app, Role.ADMIN, "chief")
    officer(fresh_app)
    sign_in_page(client, "chief")
    html = client.get("/stats").get_data(as_text=True)
    assert 'href="/stats"' in html and 'href="/audit"' in html
    assert 'href="/admin/courses"' in html
    # Programmes and targets are reached from the dashboard: every staff role may read them.
    assert 'href="/admin/programmes"' in html and 'href="/admin/targets"' in html
    client.post(
        "/logout", data={"csrf_token": re.search(r'name="csrf-token" content="([^"]+)"', html)[1]}
    )
    sign_in_page(client, "officer-a")
    html = client.get("/stats").get_data(as_text=True)
    assert 'href="/stats"' in html and 'href="/audit"' in html  # the review queue
    for admin_page in ("/admin/courses", "/admin/platforms"):
        assert f'href="{admin_page}"' not in html
    assert 'href="/admin/targets"' in html  # to read the district's targets
