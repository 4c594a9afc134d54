"""Districts: loading the list, reading it, and a trainee's district as they chose it or
staff corrected it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from app.audit import service as audit
from app.bureau.models import District, DistrictKind, Programme
from app.errors import Invalid, NotFound
from app.extensions import db
from app.identity.models import Role, User

DATA_FILE = Path(__file__).parent / "data" / "districts.csv"


@dataclass(frozen=True)
class LoadResult:
    added: int
    updated: int


def load_districts(path: Path = DATA_FILE) -> LoadResult:
    """Insert or update every district of the list (idempotent; the list's order is kept)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    known = {d.code: d for d in db.session.scalars(sa.select(District))}
    added = updated = 0
    for position, row in enumerate(rows):
        values = {
            "name": row["name"],
            "name_en": row["name_en"],
            "kind": DistrictKind(row["kind"]),
            "position": position,
        }
        district = known.get(row["code"])
        if district is None:
            db.session.add(District(code=row["code"], **values))
            added += 1
        elif any(getattr(district, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(district, key, value)
            updated += 1
    db.session.flush()
    return LoadResult(added, updated)


def districts() -> list[District]:
    """Every district in the list's order."""
    return list(db.session.scalars(sa.select(District).order_by(District.position)))


def district_name(district: District) -> str:
    """The name in the reader's language."""
    locale = get_locale()
    return district.name if locale is None or locale.language == "zh" else district.name_en


def district_of(user: User) -> District | None:
    """The district a person is filed under, if any."""
    return db.session.get(District, user.district_code) if user.district_code else None


def programmes_of_years(*years: int) -> list[Programme]:
    """Programmes of these years (every year when none is named), newest year first."""
    query = sa.select(Programme).order_by(Programme.year.desc(), Programme.id)
    if years:
        query = query.where(Programme.year.in_(years))
    return list(db.session.scalars(query))


def get_district(code: str | None, field: str = "district") -> District:
    """The district of `code`, or a 422 naming `field`."""
    district = db.session.get(District, code) if code else None
    if district is None:
        raise Invalid(fields={field: _l("Choose a district from the list.")})
    return district


def choose_district(trainee: User, code: str) -> None:
    """The trainee says where they work or are insured."""
    trainee.district_code = get_district(code).code
    db.session.flush()


def correct_district(trainee_id: int, code: str, reason: str, *, staff: User) -> User:
    """Staff move a trainee to another district; the audit log keeps both and why."""
    trainee = db.session.get(User, trainee_id)
    if trainee is None or trainee.role is not Role.TRAINEE:
        raise NotFound(_l("No such trainee."))
    district = get_district(code)
    reason = reason.strip()
    if not reason:
        raise Invalid(fields={"reason": _l("Say why the district changes.")})
    before = trainee.district_code
    trainee.district_code = district.code
    audit.record(
        "trainee.district",
        actor=staff,
        subject_type="user",
        subject_id=trainee.id,
        detail={"from": before, "to": district.code, "reason": reason},
    )
    return trainee
