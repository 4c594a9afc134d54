"""The figures as JSON, CSV and XLSX for staff and the bureau's other systems."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.identity.auth import api_auth, api_user
from app.identity.models import STAFF_ROLES, User
from app.stats import bp, export, service
from app.stats.figures import FIGURES

COLUMNS = ["key", "label", "definition_version", "value", "target"]


def _slice() -> tuple[int, str | None, int | None]:
    """The year, district and programme asked for, checked against the caller's scope."""
    user = api_user()
    assert isinstance(user, User)
    year = service.parse_year(request.args.get("year"))
    district = service.check_district(user, request.args.get("district"))
    programme = service.parse_programme(request.args.get("programme"))
    return year, district, programme


def table(summary: dict[str, Any]) -> list[list[Any]]:
    """The summary as one row per figure: key, label, definition version, value, target."""
    targets = {t["key"]: t["target"] for t in summary["targets"]}
    return [
        [
            item["key"],
            str(FIGURES[item["key"]].label),
            item["definition_version"],
            item["value"],
            targets.get(item["key"]),
        ]
        for item in summary["figures"]
    ]


def _file_name(year: int, district: str | None, programme: int | None, ext: str) -> str:
    parts = ["stats", str(year), district or "city"]
    if programme:
        parts.append(f"p{programme}")
    return "-".join(parts) + "." + ext


@bp.get("/api/v1/stats/summary")
@api_auth(*STAFF_ROLES)
def api_summary():
    year, district, programme = _slice()
    return jsonify(service.summary(year, district, programme))


@bp.get("/api/v1/stats/summary.csv")
@api_auth(*STAFF_ROLES)
def api_summary_csv():
    year, district, programme = _slice()
    body = export.csv_bytes(COLUMNS, table(service.summary(year, district, programme)))
    name = _file_name(year, district, programme, "csv")
    return Response(
        body,
        mimetype=export.CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/api/v1/stats/summary.xlsx")
@api_auth(*STAFF_ROLES)
def api_summary_xlsx():
    year, district, programme = _slice()
    rows = table(service.summary(year, district, programme))
    body = export.xlsx_bytes(str(year), COLUMNS, rows)
    name = _file_name(year, district, programme, "xlsx")
    return Response(
        body,
        mimetype=export.XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
