"""Key groups (就业重点群体) a trainee belongs to: what the trainee declares, and what staff
verify or add; and who among staff may change a trainee's district or groups."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.audit import service as audit
from app.bureau.models import GroupSource, TraineeGroup, TraineeGroupKind
from app.db import utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db
from app.identity.models import Role, User


def groups_of(user_id: int) -> list[TraineeGroup]:
    """The trainee's groups in the order of TraineeGroupKind."""
    rows = db.session.scalars(sa.select(TraineeGroup).where(TraineeGroup.user_id == user_id))
    order = {kind: at for at, kind in enumerate(TraineeGroupKind)}
    return sorted(rows, key=lambda row: order[row.kind])


def parse_kind(raw: Any) -> TraineeGroupKind:
    try:
        return TraineeGroupKind(raw)
    except ValueError:
        raise Invalid(fields={"kind": _l("Choose a group from the list.")}) from None


def _row(user_id: int, kind: TraineeGroupKind) -> TraineeGroup | None:
    return db.session.scalar(
        sa.select(TraineeGroup).where(TraineeGroup.user_id == user_id, TraineeGroup.kind == kind)
    )


def declare(trainee: User, raw_kind: Any) -> TraineeGroup:
    """The trainee says they belong to a group; a group staff verified stays verified."""
    if trainee.role is not Role.TRAINEE:
        raise Forbidden(_l("Only trainees declare their groups."))
    kind = parse_kind(raw_kind)
    row = _row(trainee.id, kind)
    if row is None:
        row = TraineeGroup(user_id=trainee.id, kind=kind, source=GroupSource.SELF_DECLARED)
        db.session.add(row)
        db.session.flush()
    return row


def withdraw(trainee: User, raw_kind: Any) -> None:
    """The trainee takes back a group they declared; one staff verified or imported stays."""
    kind = parse_kind(raw_kind)
    row = _row(trainee.id, kind)
    if row is None:
        raise NotFound(_l("You have not declared this group."))
    if row.source is not GroupSource.SELF_DECLARED:
        raise Forbidden(_l("Staff recorded this group; ask your district's bureau to change it."))
    db.session.delete(row)
    db.session.flush()


def may_change_trainee(staff: User, trainee: User) -> bool:
    """An administrator, or the district officer of the trainee's district."""
    if staff.role is Role.ADMIN:
        return True
    return (
        staff.role is Role.DISTRICT_OFFICER
        and staff.district_code is not None
        and staff.district_code == trainee.district_code
    )


def trainee_for_staff(trainee_id: int, staff: User) -> User:
    """The trainee staff want to change: 404 when there is none (or it is out of the caller's
    district), 403 when the caller may not change trainees."""
    trainee = db.session.get(User, trainee_id)
    if trainee is None or trainee.role is not Role.TRAINEE:
        raise NotFound(_l("No such trainee."))
    if not may_change_trainee(staff, trainee):
        raise Forbidden(
            _l("Only administrators and the trainee's district officer change this."),
            code="out_of_scope",
        )
    return trainee


def verify(trainee_id: int, raw_kind: Any, *, staff: User) -> TraineeGroup:
    """Staff confirm a group (the trainee's declaration, or one they add); audit-logged."""
    trainee = trainee_for_staff(trainee_id, staff)
    kind = parse_kind(raw_kind)
    row = _row(trainee.id, kind)
    before = row.source.value if row is not None else None
    if row is None:
        row = TraineeGroup(user_id=trainee.id, kind=kind, source=GroupSource.STAFF_VERIFIED)
        db.session.add(row)
    row.source = GroupSource.STAFF_VERIFIED
    row.recorded_by = staff.id
    row.recorded_at = utcnow()
    db.session.flush()
    audit.record(
        "trainee.group",
        actor=staff,
        subject_type="user",
        subject_id=trainee.id,
        detail={"kind": kind.value, "from": before, "to": GroupSource.STAFF_VERIFIED.value},
    )
    return row


def trainee_panel(trainee: User, staff: User) -> dict[str, Any]:
    """What the desk shows about a trainee's district and groups, and whether `staff` may
    change them (then the choices)."""
    from app.bureau import service

    can_change = may_change_trainee(staff, trainee)
    return {
        "trainee_id": trainee.id,
        "district": service.district_of(trainee),
        "groups": groups_of(trainee.id),
        "can_change": can_change,
        "districts": service.districts() if can_change else [],
        "kinds": list(TraineeGroupKind),
    }
