"""Special programmes and the city's targets: reading them, and the checked, audit-logged
changes city staff make to them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.audit import service as audit
from app.bureau.models import District, Programme, Target, TraineeGroupKind
from app.catalog.models import Occupation
from app.errors import Invalid, NotFound
from app.extensions import db
from app.identity.models import User

MAX_NAME = 100
MAX_TRAININGS = 100_000_000
MAX_BUDGET = Decimal("999999999999.99")  # Numeric(14, 2)
YEARS = range(2000, 2101)

# The figures a target can be set for, in the grid's column order. Counts only: a target is
# a whole number of trainings (stats-core's FIGURES gives their labels and definitions).
TARGET_KEYS: tuple[str, ...] = ("online_trainings", "subsidised_trainings")
CITY = ""  # Target.district_code of the whole city
ALL_PROGRAMMES = 0


# --------------------------------------------------------------------------- programmes


def programmes(year: int) -> list[Programme]:
    """The year's programmes, each parent followed by its parts, in the order they were made."""
    rows = list(
        db.session.scalars(
            sa.select(Programme).where(Programme.year == year).order_by(Programme.id)
        )
    )
    children: dict[int, list[Programme]] = {}
    for row in rows:
        if row.parent_id is not None:
            children.setdefault(row.parent_id, []).append(row)
    ordered: list[Programme] = []
    for row in rows:
        if row.parent_id is None or row.parent_id not in {r.id for r in rows}:
            ordered.append(row)
            ordered.extend(children.get(row.id, []))
    return ordered


def years_with_programmes() -> list[int]:
    return list(
        db.session.scalars(sa.select(Programme.year).distinct().order_by(Programme.year.desc()))
    )


def get_programme(programme_id: int) -> Programme:
    row = db.session.get(Programme, programme_id)
    if row is None:
        raise NotFound(_l("No such programme."))
    return row


def occupation_names(rows: Iterable[Programme]) -> dict[str, str]:
    """The names of the occupations these programmes name, by code."""
    codes = {code for row in rows for code in row.occupation_codes or []}
    if not codes:
        return {}
    query = sa.select(Occupation.code, Occupation.name).where(Occupation.code.in_(codes))
    return {code: name for code, name in db.session.execute(query)}


def parse_count(raw: Any, field: str) -> int | None:
    """A whole number of trainings from a form or JSON: None when empty; 422 naming `field`."""
    text = str(raw if raw is not None else "").strip().replace(",", "").replace("，", "")
    if not text:
        return None
    if not re.fullmatch(r"\d{1,9}", text) or int(text) > MAX_TRAININGS:
        raise Invalid(fields={field: _l("A whole number from 0 to 100,000,000.")})
    return int(text)


def parse_budget(raw: Any, field: str = "budget_yuan") -> Decimal:
    text = str(raw if raw is not None else "").strip().replace(",", "").replace("，", "")
    if not text:
        return Decimal("0")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0 or amount > MAX_BUDGET:
        raise Invalid(fields={field: _l("An amount in yuan, 0 or more.")})
    if amount != amount.quantize(Decimal("0.01")):
        raise Invalid(fields={field: _l("At most two decimal places (fen).")})
    return amount.quantize(Decimal("0.01"))


def parse_codes(raw: Any) -> list[str]:
    """Occupation codes typed in a box, separated by spaces, commas or new lines, or a list."""
    items: Iterable[Any] = (
        raw if isinstance(raw, list | tuple) else re.split(r"[\s,，;；、]+", str(raw or ""))
    )
    codes: list[str] = []
    for item in items:
        code = str(item).strip()
        if code and code not in codes:
            codes.append(code)
    return codes


@dataclass(frozen=True)
class ProgrammeInput:
    name: str
    year: int
    parent_id: int | None
    target_trainings: int
    target_groups: list[str]
    occupation_codes: list[str]
    budget_yuan: Decimal


def _check(values: Mapping[str, Any], current: Programme | None) -> ProgrammeInput:
    """Every field checked at once, so a form shows all its mistakes together."""
    errors: dict[str, Any] = {}
    name = str(values.get("name") or "").strip()
    if not name or len(name) > MAX_NAME:
        errors["name"] = _l("A name of 1 to 100 characters.")
    year = current.year if current is not None else None
    if current is None:
        raw_year = str(values.get("year") or "").strip()
        if raw_year.isdigit() and int(raw_year) in YEARS:
            year = int(raw_year)
        else:
            errors["year"] = _l("A year such as 2026.")
    target = 0
    try:
        target = parse_count(values.get("target_trainings"), "target_trainings") or 0
    except Invalid as error:
        errors.update(error.fields or {})
    budget = Decimal("0")
    try:
        budget = parse_budget(values.get("budget_yuan"))
    except Invalid as error:
        errors.update(error.fields or {})
    raw_groups = values.get("target_groups") or []
    groups = [raw_groups] if isinstance(raw_groups, str) else list(raw_groups)
    known_groups = [k.value for k in TraineeGroupKind]
    if any(g not in known_groups for g in groups):
        errors["target_groups"] = _l("Choose groups from the list.")
    groups = [g for g in known_groups if g in groups]  # the list's order, once each
    codes = parse_codes(values.get("occupation_codes"))
    if codes:
        found = set(
            db.session.scalars(
                sa.select(Occupation.code).where(Occupation.code.in_(codes), Occupation.level == 4)
            )
        )
        unknown = [c for c in codes if c not in found]
        if unknown:
            errors["occupation_codes"] = _l(
                "Not occupations of the catalogue: %(codes)s. Codes look like 4-10-01-06.",
                codes=", ".join(unknown[:5]),
            )
    parent_id = None
    raw_parent = str(values.get("parent_id") or "").strip()
    if raw_parent:
        parent = db.session.get(Programme, int(raw_parent)) if raw_parent.isdigit() else None
        has_parts = current is not None and db.session.scalar(
            sa.select(sa.func.count()).where(Programme.parent_id == current.id)
        )
        if (
            parent is None
            or parent.year != year
            or parent.parent_id is not None
            or (current is not None and parent.id == current.id)
        ):
            errors["parent_id"] = _l("A programme of the same year that is not itself a part.")
        elif has_parts:
            errors["parent_id"] = _l("This programme has parts of its own: it cannot be a part.")
        else:
            parent_id = parent.id
            if target > parent.target_trainings:
                errors["target_trainings"] = _l(
                    "A part's target cannot exceed its programme's (%(target)s).",
                    target=f"{parent.target_trainings:,}",
                )
    if not errors and year is not None:
        clash = db.session.scalar(
            sa.select(Programme.id).where(
                Programme.year == year,
                Programme.name == name,
                Programme.id != (current.id if current is not None else 0),
            )
        )
        if clash is not None:
            errors["name"] = _l("The year already has a programme of this name.")
    if errors:
        raise Invalid(fields=errors)
    assert year is not None
    return ProgrammeInput(name, year, parent_id, target, groups, codes, budget)


def _snapshot(row: Programme) -> dict[str, Any]:
    return {
        "name": row.name,
        "year": row.year,
        "parent_id": row.parent_id,
        "target_trainings": row.target_trainings,
        "target_groups": list(row.target_groups or []),
        "occupation_codes": list(row.occupation_codes or []),
        "budget_yuan": f"{Decimal(row.budget_yuan):.2f}",
    }


def create_programme(values: Mapping[str, Any], *, staff: User | None) -> Programme:
    """A new programme of a year; 422 with every field's mistake."""
    checked = _check(values, None)
    row = Programme(
        year=checked.year,
        name=checked.name,
        parent_id=checked.parent_id,
        target_trainings=checked.target_trainings,
        target_groups=checked.target_groups,
        occupation_codes=checked.occupation_codes,
        budget_yuan=checked.budget_yuan,
        created_by=staff.id if staff is not None else None,
    )
    db.session.add(row)
    db.session.flush()
    _log("programme.create", staff, "programme", row.id, _snapshot(row))
    return row


def update_programme(
    programme_id: int, values: Mapping[str, Any], *, staff: User | None
) -> Programme:
    """Change a programme (its year stays); the audit log keeps what changed, before and after."""
    row = get_programme(programme_id)
    checked = _check(values, row)
    before = _snapshot(row)
    row.name = checked.name
    row.parent_id = checked.parent_id
    row.target_trainings = checked.target_trainings
    row.target_groups = checked.target_groups
    row.occupation_codes = checked.occupation_codes
    row.budget_yuan = checked.budget_yuan
    db.session.flush()
    after = _snapshot(row)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changed:
        _log("programme.update", staff, "programme", row.id, changed)
    return row


# --------------------------------------------------------------------------- targets


def targets(year: int) -> dict[tuple[str, str], int]:
    """The year's targets for all programmes: {(district_code or '', figure_key): value}."""
    rows = db.session.execute(
        sa.select(Target.district_code, Target.figure_key, Target.value).where(
            Target.year == year, Target.programme_id == ALL_PROGRAMMES
        )
    )
    return {(code, key): int(value) for code, key, value in rows}


def field_name(district_code: str, key: str) -> str:
    """The form field of one cell of the grid."""
    return f"t-{district_code or 'city'}-{key}"


@dataclass(frozen=True)
class TargetChanges:
    set: int
    cleared: int


def set_targets(
    year: int, cells: Mapping[tuple[str, str], Any], *, staff: User | None
) -> TargetChanges:
    """Set the year's targets from the grid: `cells` maps (district_code or '', figure key) to
    what was typed; an empty cell clears its target, an unchanged one is left alone. Checked
    whole before anything changes; each change is audit-logged."""
    if year not in YEARS:
        raise Invalid(fields={"year": _l("A year such as 2026.")})
    codes = set(db.session.scalars(sa.select(District.code)))
    errors: dict[str, Any] = {}
    wanted: dict[tuple[str, str], int | None] = {}
    for (code, key), raw in cells.items():
        field = field_name(code, key)
        if key not in TARGET_KEYS or (code != CITY and code not in codes):
            errors[field] = _l("Not a cell of the grid.")
            continue
        try:
            wanted[(code, key)] = parse_count(raw, field)
        except Invalid as error:
            errors.update(error.fields or {})
    if errors:
        raise Invalid(fields=errors)
    existing = {
        (row.district_code, row.figure_key): row
        for row in db.session.scalars(
            sa.select(Target).where(Target.year == year, Target.programme_id == ALL_PROGRAMMES)
        )
    }
    done = cleared = 0
    for (code, key), value in wanted.items():
        row = existing.get((code, key))
        before = int(row.value) if row is not None else None
        if before == value:
            continue
        if value is None:
            assert row is not None
            db.session.delete(row)
            cleared += 1
        else:
            if row is None:
                row = Target(
                    year=year, figure_key=key, district_code=code, programme_id=ALL_PROGRAMMES
                )
                db.session.add(row)
            row.value = Decimal(value)
            row.updated_by = staff.id if staff is not None else None
            done += 1
        db.session.flush()
        _log(
            "target.set",
            staff,
            "stat_target",
            f"{year}/{key}/{code or 'city'}",
            {"year": year, "figure": key, "district": code, "from": before, "to": value},
        )
    return TargetChanges(done, cleared)


def _log(
    action: str, staff: User | None, subject_type: str, subject_id: int | str, detail: Any
) -> None:
    if staff is None:
        audit.record(
            action, actor=None, subject_type=subject_type, subject_id=subject_id, detail=detail
        )
    else:
        audit.record_request(
            action, subject_type=subject_type, subject_id=subject_id, detail=detail, actor=staff
        )
