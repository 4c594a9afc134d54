"""Monthly reports (月度数据报送): a month's figures frozen into a StatReport that never changes.

On the first of each month the schedule freezes the month before: every figure for the whole
city, per district, per programme and per district and programme, computed from the records
at that moment, with the definition version of each figure and the districts and programmes as
they were named then. The content is canonical JSON (sorted keys, no spaces); its SHA-256 is in
the row and in the audit log, so anyone can recompute it from the stored content and see that
nothing moved. A correction is a new version, recomputed when it is made, with its reason.
Freezing a month that has a report does nothing; two freezes racing are decided by the unique
(period, version) constraint.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.audit import service as audit
from app.bureau import scope
from app.bureau import service as bureau
from app.bureau.models import District, Programme
from app.db import savepoint
from app.errors import Invalid, NotFound
from app.extensions import db
from app.identity.models import User
from app.jobs import schedule
from app.stats import rollup
from app.stats.figures import FIGURES
from app.stats.models import StatReport
from app.timeutil import today_local

log = logging.getLogger(__name__)
PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Bumped if the layout of `content` ever changes, so readers can tell the layouts apart.
CONTENT_FORMAT = 1
MAX_REASON = 2000
CITY = ""


def parse_month(text: str | None, field: str = "month") -> str:
    """'2026-03' as given, or a 422 naming the field."""
    match = PERIOD_PATTERN.match((text or "").strip())
    if not match:
        raise Invalid(fields={field: _l("Give a month such as 2026-03.")})
    return match.group(0)


def previous_month(today: date | None = None) -> str:
    today = today or today_local()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year}-{month:02d}"


def canonical(content: dict[str, Any]) -> bytes:
    return audit.canonical_json(content).encode()


def digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def _value(unit: str, value: Decimal) -> int | str:
    """Counts as integers; hours and yuan as fixed two-decimal text (no float in a hash)."""
    return int(value) if unit == "count" else f"{value:.2f}"


def compute(period: str) -> dict[str, Any]:
    """The report's content for `period`, from the records as they are now."""
    year = int(period[:4])
    with scope.narrowed_to(None):  # the bureau's figures, whoever asked
        values = rollup.compute(year)
        districts = list(db.session.scalars(sa.select(District).order_by(District.position)))
        programmes = list(
            db.session.scalars(
                sa.select(Programme).where(Programme.year == year).order_by(Programme.id)
            )
        )
    city: dict[str, Any] = {}
    by_district: dict[str, dict[str, Any]] = {}
    by_programme: dict[str, dict[str, Any]] = {}
    by_both: dict[str, dict[str, dict[str, Any]]] = {}
    for (key, value_period, district, programme), value in values.items():
        if value_period != period or key not in FIGURES:
            continue
        shown = _value(FIGURES[key].unit, value)
        if not district and not programme:
            city[key] = shown
        elif district and not programme:
            by_district.setdefault(district, {})[key] = shown
        elif programme and not district:
            by_programme.setdefault(str(programme), {})[key] = shown
        else:
            by_both.setdefault(district, {}).setdefault(str(programme), {})[key] = shown
    known = {p.id for p in programmes}
    named = programmes + [
        p
        for p in db.session.scalars(
            sa.select(Programme).where(
                Programme.id.in_([int(p) for p in by_programme if int(p) not in known])
            )
        )
    ]
    return {
        "format": CONTENT_FORMAT,
        "period": period,
        "figures": [{"key": f.key, "version": f.version, "unit": f.unit} for f in FIGURES.values()],
        "districts": [{"code": d.code, "name": d.name, "name_en": d.name_en} for d in districts],
        "programmes": [{"id": p.id, "name": p.name, "parent_id": p.parent_id} for p in named],
        "city": city,
        "by_district": by_district,
        "by_programme": by_programme,
        "by_district_programme": by_both,
    }


def _write(
    period: str, version: int, content: dict[str, Any], staff: User | None, reason: str
) -> StatReport | None:
    """Insert one version; None when another run wrote that version first."""
    report = StatReport(
        period=period,
        version=version,
        content=content,
        sha256=digest(content),
        reason=reason,
        frozen_by=staff.id if staff is not None else None,
    )
    try:
        with savepoint(db.session):
            db.session.add(report)
            db.session.flush()
    except sa.exc.IntegrityError:
        return None
    return report


def latest(period: str) -> StatReport | None:
    return db.session.scalar(
        sa.select(StatReport)
        .where(StatReport.period == period)
        .order_by(StatReport.version.desc())
        .limit(1)
    )


def versions(period: str) -> list[StatReport]:
    return list(
        db.session.scalars(
            sa.select(StatReport).where(StatReport.period == period).order_by(StatReport.version)
        )
    )


def get(period: str, version: int | None = None) -> StatReport:
    if version is None:
        report = latest(period)
    else:
        report = db.session.scalar(
            sa.select(StatReport).where(StatReport.period == period, StatReport.version == version)
        )
    if report is None:
        raise NotFound(_l("No report for this month."))
    return report


def freeze_month(
    period: str, *, staff: User | None = None, reason: str = "", actor_label: str | None = None
) -> StatReport:
    """Freeze `period` ('2026-03') as version 1 unless a report exists; flushes, the caller
    commits. Returns the month's first version, whoever wrote it."""
    period = parse_month(period)
    existing = get_first(period)
    if existing is not None:
        return existing
    content = {**compute(period), "version": 1}
    report = _write(period, 1, content, staff, reason.strip()[:MAX_REASON])
    if report is None:  # a concurrent freeze won
        found = get_first(period)
        assert found is not None
        return found
    audit.record(
        "stats.report_frozen",
        subject_type="stat_report",
        subject_id=report.id,
        detail={"period": period, "version": 1, "sha256": report.sha256},
        actor=staff,
        actor_label=actor_label,
    )
    return report


def get_first(period: str) -> StatReport | None:
    return db.session.scalar(
        sa.select(StatReport).where(StatReport.period == period, StatReport.version == 1)
    )


def correct(
    period: str, reason: str, staff: User | None, *, actor_label: str | None = None
) -> StatReport:
    """A new version of a frozen month, recomputed now, with its (required) reason."""
    period = parse_month(period)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(fields={"reason": _l("Say why the report is corrected.")})
    if len(reason) > MAX_REASON:
        raise Invalid(fields={"reason": _l("At most 2000 characters.")})
    current = latest(period)
    if current is None:
        raise NotFound(_l("No report for this month: freeze it first."))
    content = compute(period)
    for _ in range(3):
        version = current.version + 1
        report = _write(period, version, {**content, "version": version}, staff, reason)
        if report is not None:
            break
        current = latest(period) or current
    else:
        raise RuntimeError(f"could not write a correction of {period}")
    audit.record(
        "stats.report_corrected",
        subject_type="stat_report",
        subject_id=report.id,
        detail={
            "period": period,
            "version": report.version,
            "sha256": report.sha256,
            "reason": reason,
        },
        actor=staff,
        actor_label=actor_label,
    )
    return report


def holds(report: StatReport) -> bool:
    """The stored content still hashes to the stored digest."""
    return digest(report.content) == report.sha256


def months() -> list[tuple[str, list[StatReport]]]:
    """Every frozen month, newest first, with its versions (oldest first)."""
    grouped: dict[str, list[StatReport]] = {}
    for report in db.session.scalars(
        sa.select(StatReport).order_by(StatReport.period.desc(), StatReport.version)
    ):
        grouped.setdefault(report.period, []).append(report)
    return list(grouped.items())


def district_label(content: dict[str, Any], code: str) -> str:
    """A district's name as the report recorded it, in the reader's language when known."""
    for entry in content.get("districts", []):
        if entry["code"] == code:
            district = District(code=code, name=entry["name"], name_en=entry.get("name_en"))
            return bureau.district_name(district)
    return code


def programme_label(content: dict[str, Any], programme_id: str) -> str:
    for entry in content.get("programmes", []):
        if str(entry["id"]) == str(programme_id):
            return str(entry["name"])
    return str(programme_id)


def rows(content: dict[str, Any], district: str | None) -> dict[str, list[dict[str, Any]]]:
    """The tables a reader may see: for a district (an officer's), only that district's row
    and its programmes; otherwise the city, every district and every programme."""
    zero = {f["key"]: 0 if f["unit"] == "count" else "0.00" for f in content.get("figures", [])}

    def row(slice_: str, label: str, values: dict[str, Any]) -> dict[str, Any]:
        return {"slice": slice_, "label": label, **{k: values.get(k, z) for k, z in zero.items()}}

    if district == "":  # an officer whose account names no district sees no row
        return {"city": [], "districts": [], "programmes": []}
    if district is not None:
        own = content.get("by_district", {}).get(district, {})
        both = content.get("by_district_programme", {}).get(district, {})
        return {
            "city": [],
            "districts": [row(district, district_label(content, district), own)],
            "programmes": [
                row(str(p["id"]), p["name"], both.get(str(p["id"]), {}))
                for p in content.get("programmes", [])
            ],
        }
    by_district = content.get("by_district", {})
    by_programme = content.get("by_programme", {})
    return {
        "city": [row(CITY, "", content.get("city", {}))],
        "districts": [
            row(d["code"], district_label(content, d["code"]), by_district.get(d["code"], {}))
            for d in content.get("districts", [])
        ],
        "programmes": [
            row(str(p["id"]), p["name"], by_programme.get(str(p["id"]), {}))
            for p in content.get("programmes", [])
        ],
    }


@schedule.register("stats_freeze", "STATS_FREEZE_AT")
def freeze_previous_month() -> int:
    """The periodic task: freeze last month if it has no report; 1 when it froze one."""
    period = previous_month()
    if get_first(period) is not None:
        return 0
    freeze_month(period)
    db.session.commit()
    return 1
