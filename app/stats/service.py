"""Reading the figures: what pages, the API and exports show, from the rolled-up StatValue rows
only (never a scan of the records per view), with the targets set for the same slice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.bureau import service as bureau
from app.bureau.models import District, Programme, Target
from app.errors import Forbidden, Invalid
from app.extensions import db
from app.identity.models import Role, User
from app.stats.figures import FIGURES, Figure, period_key
from app.stats.models import StatValue

BY = ("district", "programme", "month")
MIN_YEAR, MAX_YEAR = 2000, 2100


def number(figure: Figure, value: Decimal | None) -> int | float:
    """A stored value as JSON shows it: counts as integers, hours and yuan with decimals."""
    value = value if value is not None else Decimal(0)
    return int(value) if figure.unit == "count" else float(value)


def parse_year(text: str | None, field: str = "year") -> int:
    try:
        year = int(text or "")
    except ValueError:
        raise Invalid(fields={field: _l("Give a year such as 2026.")}) from None
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise Invalid(fields={field: _l("Give a year such as 2026.")})
    return year


def parse_programme(text: str | None, field: str = "programme") -> int | None:
    """The programme id asked for (None: all), or a 422."""
    if text is None or text == "":
        return None
    programme = db.session.get(Programme, int(text)) if text.isdigit() else None
    if programme is None:
        raise Invalid(fields={field: _l("Choose a programme from the list.")})
    return programme.id


def check_district(user: User, code: str | None) -> str | None:
    """The district `user` may ask for: city staff any (or None, the whole city); a district
    officer their own, whether they name it or not, and 403 ``out_of_scope`` for another."""
    code = code or None
    if user.role is Role.DISTRICT_OFFICER:
        own = user.district_code
        # An officer whose account names no district has no figures to see, not the city's.
        if not own or (code is not None and code != own):
            raise Forbidden(
                _l("You can see the figures of your own district only."), code="out_of_scope"
            )
        return own
    if code is None:
        return None
    return bureau.get_district(code).code


def _values(
    periods: list[str], district: str | None, programme: int | None, keys: list[str] | None = None
) -> dict[tuple[str, str, str, int], StatValue]:
    query = sa.select(StatValue).where(StatValue.period.in_(periods))
    if district is not None:
        query = query.where(StatValue.district_code == district)
    if programme is not None:
        query = query.where(StatValue.programme_id == programme)
    if keys is not None:
        query = query.where(StatValue.figure_key.in_(keys))
    return {
        (v.figure_key, v.period, v.district_code, v.programme_id): v
        for v in db.session.scalars(query)
    }


def targets_of(year: int, district: str | None, programme: int | None) -> dict[str, Decimal]:
    """The targets set for one slice: Target rows, and a programme's own number of trainings
    as the target of its subsidised trainings (city-wide) unless a row says otherwise."""
    found: dict[str, Decimal] = {}
    if programme and not district:
        target_trainings = db.session.scalar(
            sa.select(Programme.target_trainings).where(Programme.id == programme)
        )
        if target_trainings:
            found["subsidised_trainings"] = Decimal(target_trainings)
    for target in db.session.scalars(
        sa.select(Target).where(
            Target.year == year,
            Target.district_code == (district or ""),
            Target.programme_id == (programme or 0),
        )
    ):
        found[target.figure_key] = target.value
    return found


def summary(year: int, district: str | None = None, programme: int | None = None) -> dict:
    """Every figure of `year` for one slice, and its targets: the API's JSON."""
    d, p = district or "", programme or 0
    rows = _values([period_key(year)], d, p)
    figures = []
    current: dict[str, int | float] = {}
    for figure in FIGURES.values():
        row = rows.get((figure.key, period_key(year), d, p))
        current[figure.key] = number(figure, row.value if row else None)
        figures.append(
            {
                "key": figure.key,
                "value": current[figure.key],
                "definition_version": row.definition_version if row else figure.version,
            }
        )
    targets = [
        {
            "key": key,
            "target": number(FIGURES[key], target) if key in FIGURES else float(target),
            "value": current.get(key, 0),
        }
        for key, target in sorted(
            targets_of(year, district, programme).items(),
            key=lambda item: list(FIGURES).index(item[0]) if item[0] in FIGURES else 99,
        )
    ]
    result: dict[str, Any] = {"year": year, "district": district or None}
    if programme:
        result["programme"] = programme
    result.update({"figures": figures, "targets": targets})
    return result


def breakdown(
    year: int,
    by: str,
    figure_keys: list[str],
    district: str | None = None,
    programme: int | None = None,
) -> list[dict[str, Any]]:
    """One row per district, programme (of `year`) or month, each with the asked figures of
    `year` (the month's for months) within the other slice given; rows with nothing too."""
    if by not in BY:
        raise ValueError(f"breakdown by {by!r}: one of {BY}")
    figures = [FIGURES[key] for key in figure_keys]
    d, p = district or "", programme or 0
    slices: list[tuple[Any, str, str, str, int]] = []  # slice, label, period, district, prog
    if by == "district":
        chosen = [x for x in bureau.districts() if district is None or x.code == district]
        slices = [(x.code, bureau.district_name(x), period_key(year), x.code, p) for x in chosen]
    elif by == "programme":
        query = sa.select(Programme).where(Programme.year == year).order_by(Programme.id)
        if programme is not None:
            query = query.where(Programme.id == programme)
        slices = [(x.id, x.name, period_key(year), d, x.id) for x in db.session.scalars(query)]
    else:
        slices = [
            (period_key(year, m), period_key(year, m), period_key(year, m), d, p)
            for m in range(1, 13)
        ]
    periods = sorted({s[2] for s in slices})
    rows = _values(
        periods,
        None if by == "district" and district is None else d,
        None if by == "programme" and programme is None else p,
        figure_keys,
    )
    result = []
    for key, label, period, slice_district, slice_programme in slices:
        row: dict[str, Any] = {"slice": key, "label": label}
        for figure in figures:
            value = rows.get((figure.key, period, slice_district, slice_programme))
            row[figure.key] = number(figure, value.value if value else None)
        result.append(row)
    return result


def district_label(code: str | None) -> str:
    """A district's name in the reader's language ('' for the whole city)."""
    if not code:
        return ""
    district = db.session.get(District, code)
    return bureau.district_name(district) if district else code
