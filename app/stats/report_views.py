"""Pages of the monthly reports, the quarterly analysis and the roster exports run as jobs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Response, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.bureau import scope
from app.bureau import service as bureau
from app.errors import AppError, Invalid
from app.extensions import db
from app.identity.auth import role_required
from app.identity.models import STAFF_ROLES, Role, User
from app.jobs import service as jobs
from app.media import service as media_service
from app.stats import bp, export, exports_jobs, reports, service
from app.stats.figures import DISTRICT, FIGURES, month_bounds
from app.timeutil import today_local
from media_pipeline.storage import LocalStorage

QUARTERS = (1, 2, 3, 4)


def _flash_error(error: AppError) -> None:
    db.session.rollback()
    flash(str(next(iter((error.fields or {}).values()), error.message)), "error")


def _own_district() -> str | None:
    """The district whose rows the reader may see: an officer's own; None for city staff."""
    return service.check_district(current_user, None)


def _names(ids: set[int | None]) -> dict[int, str]:
    ids_ = [i for i in ids if i]
    if not ids_:
        return {}
    with scope.narrowed_to(None):  # staff accounts: who froze a report
        found = db.session.execute(sa.select(User.id, User.name).where(User.id.in_(ids_)))
        return {row.id: row.name for row in found}


# --- monthly reports ------------------------------------------------------------------------


@bp.get("/stats/reports", endpoint="reports")
@role_required(*STAFF_ROLES)
def reports_index():
    months = reports.months()
    names = _names({r.frozen_by for _, versions in months for r in versions})
    return render_template("stats/reports.html", months=months, names=names)


def _version_arg() -> int | None:
    text = request.args.get("version")
    if text in (None, ""):
        return None
    if not text.isdigit():
        raise Invalid(fields={"version": _("Choose a version from the list.")})
    return int(text)


@bp.get("/stats/reports/<period>")
@role_required(*STAFF_ROLES)
def report(period: str):
    period = reports.parse_month(period, "period")
    chosen = reports.get(period, _version_arg())
    district = _own_district()
    return render_template(
        "stats/report.html",
        report=chosen,
        versions=reports.versions(period),
        tables=reports.rows(chosen.content, district),
        figures=[FIGURES[f["key"]] for f in chosen.content["figures"] if f["key"] in FIGURES],
        versions_of=chosen.content["figures"],
        names=_names({chosen.frozen_by}),
        district=district,
        holds=reports.holds(chosen),
        can_correct=current_user.role is Role.ADMIN,
        reason_max=reports.MAX_REASON,
    )


@bp.post("/stats/reports/<period>/corrections")
@role_required(Role.ADMIN)
def correct_report(period: str):
    period = reports.parse_month(period, "period")
    try:
        corrected = reports.correct(period, request.form.get("reason", ""), current_user)
    except AppError as error:
        _flash_error(error)
        return redirect(url_for("stats.report", period=period))
    db.session.commit()
    flash(_("Version %(v)d of the report is written.", v=corrected.version), "success")
    return redirect(url_for("stats.report", period=period, version=corrected.version))


def _table_rows(chosen: Any, district: str | None) -> tuple[list[str], list[list[Any]]]:
    keys = [f["key"] for f in chosen.content["figures"] if f["key"] in FIGURES]
    columns = [_("Table"), _("Slice")] + [
        f"{FIGURES[k].label} (v{f['version']})"
        for k in keys
        for f in chosen.content["figures"]
        if f["key"] == k
    ]
    tables = reports.rows(chosen.content, district)
    body: list[list[Any]] = []
    for name, title in (
        ("city", _("Whole city")),
        ("districts", _("District")),
        ("programmes", _("Programme")),
    ):
        for row in tables[name]:
            body.append([title, row["label"] or title] + [_number(row[k]) for k in keys])
    return columns, body


def _number(value: Any) -> Any:
    return Decimal(value) if isinstance(value, str) else value


@bp.get("/stats/reports/<period>/download")
@role_required(*STAFF_ROLES)
def download_report(period: str):
    period = reports.parse_month(period, "period")
    chosen = reports.get(period, _version_arg())
    fmt = request.args.get("format", "csv")
    if fmt not in exports_jobs.FORMATS:
        raise Invalid(fields={"format": _("Choose CSV or XLSX.")})
    district = _own_district()
    columns, body = _table_rows(chosen, district)
    name = f"report-{period}-v{chosen.version}" + (f"-{district}" if district else "")
    if fmt == "csv":
        data, media_type = export.csv_bytes(columns, body), export.CSV_MEDIA_TYPE
    else:
        data = export.xlsx_bytes(f"{period} v{chosen.version}", columns, body)
        media_type = export.XLSX_MEDIA_TYPE
    response = Response(data, mimetype=media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- quarters ---------------------------------------------------------------------------------


def quarter_values(year: int, district: str | None) -> dict[str, list[Decimal]]:
    """Each figure per quarter of `year`, computed from the records by its definition (people
    and platforms counted once per quarter, stocks at each quarter's end), for the city or
    one district."""
    bounds = month_bounds(year)
    edges = [bounds[0], bounds[3], bounds[6], bounds[9], bounds[12]]
    by: tuple[str, ...] = (DISTRICT,) if district else ()
    values: dict[str, list[Decimal]] = {}
    with scope.narrowed_to(None):
        for figure in FIGURES.values():
            found = [Decimal(0)] * 4

            def keep(row: Any, quarter: int, found: list[Decimal] = found) -> None:
                if district and row.district != district:
                    return
                found[quarter - 1] = Decimal(str(row.value or 0))

            if figure.source().stock:
                for quarter in QUARTERS:
                    start, end = edges[quarter - 1], edges[quarter]
                    for row in db.session.execute(figure.select(start, end, by)):
                        keep(row, quarter)
            else:
                query = figure.select(edges[0], edges[4], by, months=edges)
                for row in db.session.execute(query):
                    keep(row, int(row.month))
            values[figure.key] = found
    return values


def year_values(year: int, district: str | None) -> dict[str, Decimal]:
    """Each figure over the whole of `year`, counted the same way as its quarters."""
    bounds = month_bounds(year)
    by: tuple[str, ...] = (DISTRICT,) if district else ()
    values: dict[str, Decimal] = {}
    with scope.narrowed_to(None):
        for figure in FIGURES.values():
            values[figure.key] = Decimal(0)
            for row in db.session.execute(figure.select(bounds[0], bounds[12], by)):
                if not district or row.district == district:
                    values[figure.key] = Decimal(str(row.value or 0))
    return values


@bp.get("/stats/quarters")
@role_required(*STAFF_ROLES)
def quarters():
    year = (
        service.parse_year(request.args.get("year"))
        if request.args.get("year")
        else today_local().year
    )
    district = service.check_district(current_user, request.args.get("district"))
    values = quarter_values(year, district)
    totals = year_values(year, district)
    targets = service.targets_of(year, district, None)
    rows = []
    for figure in FIGURES.values():
        quarter = [service.number(figure, v) for v in values[figure.key]]
        target = targets.get(figure.key)
        total = service.number(figure, totals[figure.key])
        rows.append(
            {
                "figure": figure,
                "quarters": quarter,
                "year": total,
                "target": service.number(figure, target) if target is not None else None,
                "share": round(100 * float(total) / float(target), 1) if target else None,
            }
        )
    return render_template(
        "stats/quarters.html",
        year=year,
        district=district,
        officer=current_user.role is Role.DISTRICT_OFFICER,
        districts=bureau.districts(),
        rows=rows,
    )


# --- exports as jobs --------------------------------------------------------------------------


@bp.get("/stats/exports")
@role_required(*STAFF_ROLES)
def exports():
    items = exports_jobs.mine(current_user)
    links = {item.id: exports_jobs.download_url(item, current_user) for item in items if item.done}
    running = any(item.job is None or not item.job.finished for item in items)
    return render_template(
        "stats/exports.html",
        items=items,
        links=links,
        running=running,
        officer=current_user.role is Role.DISTRICT_OFFICER,
        districts=bureau.districts(),
        district_label=service.district_label,
    )


@bp.post("/stats/exports")
@role_required(*STAFF_ROLES)
def start_export():
    try:
        job = exports_jobs.request_export(
            current_user, request.form.get("district") or None, request.form.get("format", "csv")
        )
    except AppError as error:
        _flash_error(error)
        return redirect(url_for("stats.exports"))
    db.session.commit()
    jobs.dispatch(job.id)
    flash(_("The export is queued. This page shows its progress."), "success")
    return redirect(url_for("stats.exports"))


@bp.get("/stats/exports/<int:export_id>/file")
@role_required(*STAFF_ROLES)
def export_file(export_id: int):
    key, name, media_type = exports_jobs.open_for(
        current_user, export_id, request.args.get("exp"), request.args.get("sig")
    )
    db.session.commit()  # the download is logged
    backend = media_service.storage()
    source: Any = (
        backend.local_path(key) if isinstance(backend, LocalStorage) else backend.open(key)
    )
    response = send_file(source, mimetype=media_type, as_attachment=True, download_name=name)
    response.headers["Cache-Control"] = "no-store"
    return response
