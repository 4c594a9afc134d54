"""What one heartbeat costs the database: the statements of the steady-state path, counted.

Thousands of learners each send a heartbeat every 15 s, so every statement on this path is
paid hundreds of times a second (README, Capacity). The budget below is what the path needs;
a statement added to it has to be argued for here.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.learning import rules
from app.study import workflow
from app.verification.models import Check, CheckKind

pytestmark = pytest.mark.filterwarnings("error")

# The bearer token and its user (2), the session locked with its lesson (1), the progress row
# locked (1), the evidence row (1), the session and progress updates (2). SQLite takes its
# write lock with a statement of its own. Before: 13 on both databases.
BUDGET = 7


@contextlib.contextmanager
def counted(app) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block, in order."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def is_sqlite(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "sqlite"


def test_a_credited_heartbeat_stays_within_its_statement_budget(fresh_app, steady):
    with counted(fresh_app) as statements:
        reply = steady.beat()
    assert reply.status_code == 200
    assert reply.get_json()["credited_s"] == 15.0
    assert len(statements) <= BUDGET + is_sqlite(fresh_app), "\n".join(statements)
    # No look-up of checks or the enrolment while no check waits; no reload after commit.
    assert not [s for s in statements if "face_check" in s or "FROM enrollment" in s]


def test_a_waiting_check_is_still_found_and_holds_credit(fresh_app, steady):
    with fresh_app.test_request_context():
        session = steady.session()
        check_id = workflow._ask(session, CheckKind.RANDOM, steady.position).id
        db.session.commit()
    held = steady.beat(playing=False)  # the player pauses while a check waits
    assert held.get_json()["reason"] == "check_pending"
    assert held.get_json()["credited_s"] == 0.0
    assert held.get_json()["check"]["id"] == check_id
    with fresh_app.test_request_context():
        session = steady.session()
        check = db.session.get(Check, check_id)
        workflow._close(session, check, passed=True, code=None, judged=None)
        db.session.commit()
    assert steady.beat(after=1.0, playing=False).status_code == 200  # the player resumes
    assert steady.beat(after=0.0).status_code == 200
    after = steady.beat().get_json()
    assert (after["credited_s"], after["reason"]) == (15.0, None)
    with counted(fresh_app) as statements:
        assert steady.beat().get_json()["credited_s"] == 15.0
    assert len(statements) <= BUDGET + is_sqlite(fresh_app), "\n".join(statements)


def test_a_session_that_only_thought_a_check_waited_learns_it_did_not(fresh_app, steady):
    with fresh_app.app_context():
        steady.session().awaiting_check = True
        db.session.commit()
    assert steady.beat().get_json()["credited_s"] == 15.0
    with fresh_app.app_context():
        assert steady.session().awaiting_check is False


@pytest.mark.parametrize("duration", [7200.0, 125.0, 14.0, 3.0])
def test_coverage_judged_near_the_new_stretch_equals_coverage_judged_afresh(duration):
    """Random watching (forwards, back, overlapping, past the end): the coverage a heartbeat
    stores from the buckets it touches is what judging every bucket again would give."""
    rng = random.Random(int(duration))  # noqa: S311  (a reproducible walk, not a secret)
    covered: tuple[rules.Interval, ...] = ()
    coverage = 0.0
    for _ in range(400):
        start = rng.uniform(-5, duration + 5)
        span = (start, start + rng.choice([0.5, 3.0, 7.9, 15.0, 22.5, 40.0]))
        after = rules.merge_intervals((*covered, span))
        coverage = rules.coverage_after(coverage, covered, after, span, duration)
        covered = after
        assert coverage == rules.coverage(rules.buckets_for(covered, duration), duration)
