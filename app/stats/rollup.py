"""The roll-up: every figure of a year recomputed from the records into StatValue rows.

One transaction per year: the year's rows are deleted and written again, so a reader sees the
old figures or the new ones, never a mix. Two roll-ups of one year wait for each other (an
advisory lock on PostgreSQL; SQLite's single writer, taken by the delete before anything is
read). Each figure costs a fixed number of queries whatever the number of records: a count
or sum of records one query grouped by district, programme and month (a CASE on the month
bounds), every wider slice being a sum of its rows; a count of distinct people or things,
per grouping, one query for the months and one for the year; a stock one per period.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.bureau import scope
from app.bureau.models import Programme
from app.extensions import db
from app.jobs import schedule
from app.stats.figures import (
    DISTRICT,
    FIGURES,
    GROUPINGS,
    PROGRAMME,
    Figure,
    month_bounds,
    period_key,
)
from app.stats.models import StatValue
from app.timeutil import today_local

log = logging.getLogger(__name__)
# pg_advisory_xact_lock key space of this module ("stat" in ASCII), plus the year.
LOCK_BASE = 0x73746174_0000


Key = tuple[str, str, str, int]  # figure, period, district, programme


def _number(figure: Figure, value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal(1).scaleb(-figure.places))


def _families() -> dict[int, list[int]]:
    """Each programme that has parts, with its parts: their trainings count towards it too."""
    families: dict[int, list[int]] = {}
    for programme_id, parent_id in db.session.execute(
        sa.select(Programme.id, Programme.parent_id).where(Programme.parent_id.is_not(None))
    ):
        if parent_id is not None:
            families.setdefault(parent_id, [parent_id]).append(programme_id)
    return families


def compute(year: int) -> dict[Key, Decimal]:
    """Every figure of `year` for every period and slice that has records, and the city's
    totals for every period even when nothing happened."""
    bounds = month_bounds(year)
    periods = [(period_key(year), bounds[0], bounds[12])] + [
        (period_key(year, m), bounds[m - 1], bounds[m]) for m in range(1, 13)
    ]
    families = _families()
    values: dict[Key, Decimal] = {}

    def put(figure: Figure, period: str, row: Any, by: tuple[str, ...], programme: int = 0) -> None:
        district = row.district if DISTRICT in by else ""
        if PROGRAMME in by:
            programme = row.programme
        values[(figure.key, period, district or "", programme or 0)] = _number(figure, row.value)

    def run(figure: Figure, by: tuple[str, ...], family: list[int] | None = None) -> None:
        parent = family[0] if family else 0
        if figure.source().stock:
            for period, start, end in periods:
                for row in db.session.execute(figure.select(start, end, by, programme_ids=family)):
                    put(figure, period, row, by, parent)
            return
        year_query = figure.select(bounds[0], bounds[12], by, programme_ids=family)
        for row in db.session.execute(year_query):
            put(figure, period_key(year), row, by, parent)
        month_query = figure.select(bounds[0], bounds[12], by, months=bounds, programme_ids=family)
        for row in db.session.execute(month_query):
            put(figure, period_key(year, row.month), row, by, parent)

    parents = {part: family[0] for family in families.values() for part in family[1:]}

    def run_additive(figure: Figure) -> None:
        """One query grouped by district, programme and month (no district or programme
        being a group of its own); every slice and the year are sums of its rows."""
        sums: dict[Key, Decimal] = {}
        query = figure.select(
            bounds[0], bounds[12], (DISTRICT, PROGRAMME), months=bounds, nulls=True
        )
        for row in db.session.execute(query):
            value = Decimal(str(row.value or 0))
            districts = {"", row.district or ""}
            programmes = {0, row.programme or 0}
            if row.programme in parents:
                programmes.add(parents[row.programme])
            for period in (period_key(year), period_key(year, row.month)):
                for district in districts:
                    for programme in programmes:
                        key = (figure.key, period, district, programme)
                        sums[key] = sums.get(key, Decimal(0)) + value
        for key, value in sums.items():
            values[key] = _number(figure, value)

    for figure in FIGURES.values():
        for period, _start, _end in periods:
            values[(figure.key, period, "", 0)] = _number(figure, 0)
        if figure.additive:
            run_additive(figure)
            continue
        for by in GROUPINGS:
            run(figure, by)
        # A programme with parts counts its parts' records too, each once: its slices are
        # recounted over the family and replace those of its own records alone (a superset).
        for family in families.values():
            for by in ((), (DISTRICT,)):
                run(figure, by, family)
    return values


def roll_up(year: int) -> int:
    """Recompute every StatValue row of `year` (the year and its months); how many were
    written. Flushes; the caller commits (the schedule task and the command do)."""
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_BASE + year)))
    session.execute(
        sa.delete(StatValue).where(
            sa.or_(StatValue.period == str(year), StatValue.period.like(f"{year}-%"))
        )
    )
    with scope.narrowed_to(None):  # the bureau's figures, whoever asked for them
        values = compute(year)
    rows = [
        {
            "figure_key": figure_key,
            "period": period,
            "district_code": district,
            "programme_id": programme,
            "value": value,
            "definition_version": FIGURES[figure_key].version,
        }
        for (figure_key, period, district, programme), value in values.items()
    ]
    if rows:
        session.execute(sa.insert(StatValue), rows)
    session.flush()
    return len(rows)


@schedule.register("stats_rollup", "STATS_ROLLUP_S")
def roll_up_current() -> int:
    """The periodic task: this year's figures (and last year's during January, so December's
    late records reach it), one committed transaction per year; how many rows."""
    today = today_local()
    years = [today.year - 1, today.year] if today.month == 1 else [today.year]
    written = 0
    for year in years:
        written += roll_up(year)
        db.session.commit()
    return written
