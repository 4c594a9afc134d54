"""The bureau's dashboard (/stats): the "four ones", progress against every target, and the
figures by district, programme and month, each as a chart and as the same numbers in a table.

Everything shown is read through `app.stats.service` from the rolled-up StatValue rows, so the
page, the API and the exports cannot disagree. Charts are drawn by static/js/stats-charts.js
from a JSON block on the page; without JavaScript the tables carry every number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import render_template, request, url_for
from flask_babel import format_date, format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.bureau import service as bureau
from app.bureau.models import Target
from app.extensions import db
from app.identity.auth import role_required
from app.identity.models import STAFF_ROLES, Role, User
from app.stats import bp, service
from app.stats.figures import FIGURES, period_key
from app.stats.models import StatValue
from app.timeutil import today_local

# The work plan's "four ones" (四个一): the goals a year is measured against when no Target row
# for the whole city says otherwise. "One system" has no number: every subsidised online
# training is recorded here, so its card shows how many are.
FOUR_ONES: tuple[tuple[str, Any, int | None], ...] = (
    (
        "subsidised_trainings",
        _l("One system: every subsidised online training recorded in it"),
        None,
    ),
    ("active_platforms", _l("10 or more active training platforms"), 10),
    ("occupations_with_courses", _l("100 or more occupations with digital courses"), 100),
    ("online_trainings", _l("100,000 online trainings this year"), 100_000),
)
WORK_PLAN_GOALS = {key: goal for key, _title, goal in FOUR_ONES if goal is not None}

# What each breakdown charts and tabulates.
DISTRICT_FIGURES = ["online_trainings", "subsidised_trainings", "trainees"]
PROGRAMME_FIGURES = ["subsidised_trainings", "online_trainings", "enrolments"]
MONTH_FIGURES = ["online_trainings", "subsidised_trainings", "enrolments", "certificates"]
# The years the filter offers: this one and a few before it.
YEARS_BACK = 4


@dataclass(frozen=True)
class Progress:
    key: str
    label: str
    value: int | float
    target: int | float | None
    # Where the target comes from when no Target row set it (the work plan's number).
    from_work_plan: bool = False

    @property
    def percent(self) -> int | None:
        if not self.target:
            return None
        return int(Decimal(str(self.value)) * 100 / Decimal(str(self.target)))

    @property
    def bar(self) -> int:
        """The percent a progress bar shows (a bar stops at full)."""
        return min(self.percent or 0, 100)


def number_text(value: int | float | None, unit: str = "count") -> str:
    """A figure as people read it in their language: 12,345 or 12,345.50."""
    if value is None:
        return ""
    if unit == "count":
        return format_decimal(value, format="#,##0")
    return format_decimal(value, format="#,##0.00")


def definition_link(key: str, version: int) -> dict[str, Any]:
    figure = FIGURES[key]
    return {
        "url": url_for("stats.definitions", _anchor=key),
        "version": version,
        "label": str(figure.label),
    }


def data_as_of(year: int) -> datetime | None:
    """When the newest figure of `year` was rolled up."""
    return db.session.scalar(
        sa.select(sa.func.max(StatValue.computed_at)).where(
            sa.or_(StatValue.period == period_key(year), StatValue.period.like(f"{year}-%"))
        )
    )


def district_targets(year: int, programme: int | None) -> dict[str, dict[str, Decimal]]:
    """Targets set for single districts (one query): district -> figure -> value."""
    found: dict[str, dict[str, Decimal]] = {}
    for target in db.session.scalars(
        sa.select(Target).where(
            Target.year == year,
            Target.district_code != "",
            Target.programme_id == (programme or 0),
        )
    ):
        found.setdefault(target.district_code, {})[target.figure_key] = target.value
    return found


def _chart(
    chart_id: str,
    kind: str,
    rows: list[dict[str, Any]],
    keys: list[str],
    categories: list[str],
) -> dict[str, Any]:
    return {
        "id": chart_id,
        "kind": kind,
        "categories": categories,
        "series": [
            {"name": str(FIGURES[key].label), "data": [row[key] for row in rows]} for key in keys
        ],
    }


def _month_label(year: int, month: int) -> str:
    return format_date(date(year, month, 1), "MMM")


@bp.get("/stats")
@role_required(*STAFF_ROLES)
def dashboard():
    year_arg = request.args.get("year")
    year = service.parse_year(year_arg) if year_arg else today_local().year
    user = current_user._get_current_object()
    assert isinstance(user, User)
    district = service.check_district(user, request.args.get("district"))
    programme = service.parse_programme(request.args.get("programme"))

    summary = service.summary(year, district, programme)
    values = {item["key"]: item["value"] for item in summary["figures"]}
    versions = {item["key"]: item["definition_version"] for item in summary["figures"]}
    set_targets = {item["key"]: item["target"] for item in summary["targets"]}
    whole_city = district is None and programme is None

    def progress(key: str) -> Progress:
        target = set_targets.get(key)
        from_plan = False
        if target is None and whole_city and key in WORK_PLAN_GOALS:
            target, from_plan = WORK_PLAN_GOALS[key], True
        return Progress(key, str(FIGURES[key].label), values.get(key, 0), target, from_plan)

    four_ones = [
        {"title": title, "goal": goal, "progress": progress(key)} for key, title, goal in FOUR_ONES
    ]
    # Every target of the slice, and the work plan's goals when the city set none of its own.
    target_keys = [
        key for key in FIGURES if key in set_targets or (whole_city and key in WORK_PLAN_GOALS)
    ]
    targets = [progress(key) for key in target_keys]

    by_district = service.breakdown(year, "district", DISTRICT_FIGURES, district, programme)
    by_programme = service.breakdown(year, "programme", PROGRAMME_FIGURES, district, programme)
    by_month = service.breakdown(year, "month", MONTH_FIGURES, district, programme)
    month_labels = [_month_label(year, int(str(row["slice"])[5:7])) for row in by_month]
    for row, label in zip(by_month, month_labels, strict=True):
        row["label"] = label

    # Targets of each district and each programme, for their rows' progress.
    per_district = district_targets(year, programme)
    for row in by_district:
        target = per_district.get(row["slice"], {}).get("online_trainings")
        row["target"] = int(target) if target is not None else None
    for row in by_programme:
        target = service.targets_of(year, district, row["slice"]).get("subsidised_trainings")
        row["target"] = int(target) if target is not None else None
    programme_target_label = _("Target: %(figure)s", figure=FIGURES["subsidised_trainings"].label)
    district_target_label = _("Target: %(figure)s", figure=FIGURES["online_trainings"].label)

    charts = [
        {
            "id": "chart-targets",
            "kind": "progress",
            "categories": [p.label for p in targets],
            "series": [{"name": _("Per cent of target"), "data": [p.percent for p in targets]}],
        },
        _chart(
            "chart-districts",
            "hbar",
            by_district,
            DISTRICT_FIGURES,
            [str(row["label"]) for row in by_district],
        ),
        _chart(
            "chart-programmes",
            "hbar",
            by_programme,
            PROGRAMME_FIGURES,
            [str(row["label"]) for row in by_programme],
        ),
        _chart("chart-months", "line", by_month, MONTH_FIGURES, month_labels),
    ]
    for chart in charts[1:3]:
        rows = by_district if chart["id"] == "chart-districts" else by_programme
        targets_series = [row["target"] for row in rows]
        if any(t is not None for t in targets_series):
            name = district_target_label if rows is by_district else programme_target_label
            chart["series"].append({"name": name, "data": targets_series, "target": True})

    export_args: dict[str, Any] = {"year": year}
    if district:
        export_args["district"] = district
    if programme:
        export_args["programme"] = programme
    this_year = today_local().year
    years = sorted({*range(this_year - YEARS_BACK, this_year + 1), year}, reverse=True)
    officer = user.role is Role.DISTRICT_OFFICER
    return render_template(
        "stats/dashboard.html",
        year=year,
        years=years,
        district=district,
        district_label=service.district_label(district),
        programme=programme,
        programmes=bureau.programmes_of_years(year),
        districts=[] if officer else bureau.districts(),
        officer=officer,
        four_ones=four_ones,
        targets=targets,
        figures=list(FIGURES.values()),
        figures_by_key=FIGURES,
        values=values,
        set_targets=set_targets,
        definitions={key: definition_link(key, versions[key]) for key in FIGURES},
        by_district=by_district,
        by_programme=by_programme,
        by_month=by_month,
        district_figures=[FIGURES[key] for key in DISTRICT_FIGURES],
        programme_figures=[FIGURES[key] for key in PROGRAMME_FIGURES],
        month_figures=[FIGURES[key] for key in MONTH_FIGURES],
        district_target_label=district_target_label,
        programme_target_label=programme_target_label,
        charts=charts,
        as_of=data_as_of(year),
        export_csv=url_for("stats.api_summary_csv", **export_args),
        export_xlsx=url_for("stats.api_summary_xlsx", **export_args),
        number_text=number_text,
    )
