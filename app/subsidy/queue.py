"""The auditors' queue kept as rows (`desk_queue`), so reading it costs the same at any size.

The rules stay the only judge (app/subsidy/rules.py); a row is their verdict on one enrolment,
written in the same transaction as each event that changes the enrolment's facts:

- a face check closes (passed, failed, expired), study time is confirmed, the course completes
  and the spot check is drawn, an auditor approves, rejects or clears a check: all of them run
  `service.settle`, which writes the row from the facts it gathers anyway;
- a trainee appeals (`service.appeal`), an identity flag is resolved (`service.settle_trainee`,
  for every enrolment of the trainee): the row is recomputed there;
- an identity flag is raised or changed, or a flagged trainee enrols in another course: the
  listeners below mark the trainee's rows stale (the face enrolment lives in verification);
- a study session opens, a heartbeat is refused as skipping ahead: only the evidence listed
  under a queued enrolment changes (its sessions, +5 risk), never whether it is queued; the
  study workflow may call `mark_stale` then, and the next settle rewrites the row anyway.

A stale row is recomputed by the next desk view (at most `STALE_BATCH` per view), by the
scheduled `service.refresh_stale`, or by `flask subsidy rebuild-queue` (after a deploy that
changes the rules or REJECTION_NEEDS_SECOND_AUDITOR).

Every write first takes the row (an upsert that marks it stale), before the facts are read:
on PostgreSQL a second transaction writing the same enrolment's row waits for the first to
commit and then reads its facts, so neither overwrites the other's verdict with an older one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.db import utcnow
from app.extensions import db
from app.learning.models import Enrollment
from app.subsidy import rules
from app.subsidy.models import QueueEntry
from app.verification.models import FlagStatus, IdentityFlag

# Stale rows the desk recomputes per view: bounded, so a view never pays for a whole rebuild.
STALE_BATCH = 200
# Enrolments recomputed per transaction by a rebuild.
REBUILD_BATCH = 500

TABLE = QueueEntry.__table__


def _upsert_stale(connection: sa.Connection, ids: list[int]) -> None:
    """Create the rows missing among ``ids`` and mark them all stale, holding each."""
    if not ids:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    now = utcnow()
    statement = dialect.insert(TABLE).values(
        [
            {
                "enrollment_id": enrollment_id,
                "status": rules.Status.IN_PROGRESS.value,
                "risk": 0,
                "priority": 0,
                "complete": False,
                "reasons": [],
                "checks": [],
                "stale": True,
                "updated_at": now,
            }
            for enrollment_id in sorted(set(ids))  # one order: two holders never cross
        ]
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[TABLE.c.enrollment_id], set_={"stale": True}
        )
    )


def hold(ids: Iterable[int]) -> None:
    """Take these enrolments' rows (created if missing) for the rest of the transaction,
    before their facts are read."""
    _upsert_stale(db.session.connection(), list(ids))


def mark_stale(enrollment_id: int) -> None:
    """The enrolment's queued evidence changed (a session opened, a heartbeat skipped ahead):
    recompute its row later. One statement, and only for a row in the queue."""
    db.session.execute(
        sa.update(QueueEntry)
        .where(
            QueueEntry.enrollment_id == enrollment_id,
            QueueEntry.status == rules.Status.NEEDS_REVIEW,
            QueueEntry.stale.is_(False),
        )
        .values(stale=True)
    )


def row_values(assessment: rules.Assessment, facts: rules.Facts) -> dict[str, Any]:
    """What a row keeps of the rules' verdict: plain JSON, turned into sentences on reading."""
    return {
        "status": assessment.status.value,
        "risk": assessment.risk,
        "priority": -assessment.risk,
        "complete": facts.complete,
        "reasons": [{"code": r.code, "evidence": r.evidence} for r in assessment.reasons],
        "checks": [check_json(check) for check in facts.checks if check.passed is not None],
    }


def check_json(check: rules.CheckFact) -> dict[str, Any]:
    """An answered check as the queue shows it."""
    return {
        "id": check.id,
        "passed": check.passed,
        "code": check.code,
        "score": check.score,
        "model": check.model,
        "at": check.at.isoformat(),
        "cleared": check.cleared_by is not None,
    }


def write(verdicts: dict[int, tuple[rules.Assessment, rules.Facts]]) -> None:
    """Store the rules' verdicts on enrolments already held (`hold`); one statement."""
    if not verdicts:
        return
    now = utcnow()
    db.session.execute(
        sa.update(QueueEntry),
        [
            {
                "enrollment_id": enrollment_id,
                **row_values(assessment, facts),
                "stale": False,
                "updated_at": now,
            }
            for enrollment_id, (assessment, facts) in sorted(verdicts.items())
        ],
    )


def stale_ids(limit: int) -> list[int]:
    """Up to ``limit`` stale rows, oldest enrolments first; on PostgreSQL rows another
    transaction is writing are passed over (it is recomputing them)."""
    query = (
        sa.select(TABLE.c.enrollment_id)
        .where(TABLE.c.stale.is_(True))
        .order_by(TABLE.c.enrollment_id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(db.session.scalars(query))


# --- events outside the subsidy domain ------------------------------------------------------


def _trainee_enrolments(connection: sa.Connection, user_id: int) -> list[int]:
    query = sa.select(Enrollment.id).where(Enrollment.trainee_id == user_id)
    return list(connection.scalars(query))


@sa.event.listens_for(IdentityFlag, "after_insert")
@sa.event.listens_for(IdentityFlag, "after_update")
def _flag_changed(_mapper: Any, connection: sa.Connection, flag: IdentityFlag) -> None:
    """A face found on two accounts (or the question about it answered) counts for every
    enrolment of the flagged trainee, enrolled in a course or not yet."""
    _upsert_stale(connection, _trainee_enrolments(connection, flag.user_id))


@sa.event.listens_for(Enrollment, "after_insert")
def _enrolled(_mapper: Any, connection: sa.Connection, enrollment: Enrollment) -> None:
    """A trainee whose face is in question enrols: the new enrolment is queued at once, as
    the rules would have it. One query per enrolment, a row only where a flag stands."""
    flagged = connection.scalar(
        sa.select(IdentityFlag.id)
        .where(
            IdentityFlag.user_id == enrollment.trainee_id,
            IdentityFlag.status.in_([FlagStatus.OPEN, FlagStatus.CONFIRMED]),
        )
        .limit(1)
    )
    if flagged is not None:
        _upsert_stale(connection, [enrollment.id])
