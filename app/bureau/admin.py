"""Pages for city staff: the year's special programmes, and the targets per district."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.bureau import bp, programmes, service
from app.bureau.models import TraineeGroupKind
from app.errors import AppError, Forbidden
from app.extensions import db
from app.identity.auth import reauthenticated, role_required
from app.identity.models import STAFF_ROLES, Role
from app.timeutil import today_local

P = ParamSpec("P")
R = TypeVar("R")

# Until stats-core's FIGURES names them (and when it does not), the grid's column headings.
FALLBACK_LABELS = {
    "online_trainings": _l("Online trainings"),
    "subsidised_trainings": _l("Subsidised trainings"),
}


def target_columns() -> list[dict[str, Any]]:
    """The grid's columns: key, label and definition of each figure that takes a target."""
    try:  # stats-core's module; until it is there, the bureau's own labels
        figures: dict[str, Any] = importlib.import_module("app.stats.figures").FIGURES
    except ImportError:
        figures = {}
    columns = []
    for key in programmes.TARGET_KEYS:
        figure = figures.get(key)
        columns.append(
            {
                "key": key,
                "label": figure.label if figure is not None else FALLBACK_LABELS[key],
                "definition": figure.definition if figure is not None else None,
            }
        )
    return columns


def chosen_year() -> int:
    raw = (request.values.get("year") or "").strip()
    if raw.isdigit() and int(raw) in programmes.YEARS:
        return int(raw)
    return today_local().year


def _form_values() -> dict[str, Any]:
    form = request.form
    return {
        "name": form.get("name", ""),
        "year": form.get("year", ""),
        "parent_id": form.get("parent_id", ""),
        "target_trainings": form.get("target_trainings", ""),
        "target_groups": form.getlist("target_groups"),
        "occupation_codes": form.get("occupation_codes", ""),
        "budget_yuan": form.get("budget_yuan", ""),
    }


def admin_writes(view: Callable[P, R]) -> Callable[P, R]:
    """Every staff role reads the page; only an administrator sends its form."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if request.method != "GET" and current_user.role is not Role.ADMIN:
            raise Forbidden(_l("Only administrators change programmes and targets."))
        return view(*args, **kwargs)

    return wrapper


@bp.route("/admin/programmes", methods=["GET", "POST"], endpoint="programmes")
@role_required(*STAFF_ROLES)
@admin_writes
@reauthenticated
def programmes_page():
    year = chosen_year()
    errors: dict[str, str] = {}
    editing = None
    raw_edit = request.values.get("edit", "")
    if raw_edit.isdigit():
        editing = programmes.get_programme(int(raw_edit))
        year = editing.year
    values: dict[str, Any]
    if request.method == "POST":
        values = _form_values()
        try:
            if editing is not None:
                row = programmes.update_programme(editing.id, values, staff=current_user)
            else:
                row = programmes.create_programme(values, staff=current_user)
        except AppError as error:
            db.session.rollback()
            errors = {k: str(v) for k, v in (error.fields or {"name": error.message}).items()}
            if editing is None and str(values["year"]).isdigit():
                year = int(values["year"])
        else:
            db.session.commit()
            flash(_("Programme “%(name)s” saved.", name=row.name), "success")
            return redirect(url_for("bureau.programmes", year=row.year), 303)
    elif editing is not None:
        values = {
            "name": editing.name,
            "parent_id": editing.parent_id or "",
            "target_trainings": editing.target_trainings,
            "target_groups": list(editing.target_groups or []),
            "occupation_codes": " ".join(editing.occupation_codes or []),
            "budget_yuan": editing.budget_yuan,
        }
    else:
        values = {"year": year, "target_groups": []}
    rows = programmes.programmes(year)
    years = sorted({year, today_local().year, *programmes.years_with_programmes()}, reverse=True)
    return render_template(
        "bureau/programmes.html",
        year=year,
        years=years,
        rows=rows,
        names={r.id: r.name for r in rows},
        occupations=programmes.occupation_names(rows),
        parents=[
            r for r in rows if r.parent_id is None and (editing is None or r.id != editing.id)
        ],
        groups=list(TraineeGroupKind),
        editing=editing,
        values=values,
        errors=errors,
        can_edit=current_user.role is Role.ADMIN,
    ), (422 if errors else 200)


@bp.route("/admin/targets", methods=["GET", "POST"])
@role_required(*STAFF_ROLES)
@admin_writes
@reauthenticated
def targets():
    year = chosen_year()
    columns = target_columns()
    districts = service.districts()
    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    if request.method == "POST":
        cells = {}
        for code in [programmes.CITY, *(d.code for d in districts)]:
            for column in columns:
                name = programmes.field_name(code, column["key"])
                if name in request.form:
                    cells[(code, column["key"])] = request.form[name]
                    typed[name] = request.form[name]
        try:
            changes = programmes.set_targets(year, cells, staff=current_user)
        except AppError as error:
            db.session.rollback()
            errors = {k: str(v) for k, v in (error.fields or {"year": error.message}).items()}
        else:
            db.session.commit()
            flash(
                _(
                    "Targets for %(year)s saved: %(set)d set, %(cleared)d cleared.",
                    year=year,
                    set=changes.set,
                    cleared=changes.cleared,
                ),
                "success",
            )
            return redirect(url_for("bureau.targets", year=year), 303)
    saved = programmes.targets(year)
    sums = {c["key"]: sum(saved.get((d.code, c["key"]), 0) for d in districts) for c in columns}
    return render_template(
        "bureau/targets.html",
        year=year,
        years=sorted({year - 1, year, year + 1, today_local().year}, reverse=True),
        columns=columns,
        districts=districts,
        saved=saved,
        sums=sums,
        typed=typed,
        errors=errors,
        field_name=programmes.field_name,
        can_edit=current_user.role is Role.ADMIN,
    ), (422 if errors else 200)
