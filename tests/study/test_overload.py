"""Overload: a heartbeat the server cannot start in time is shed with 503 and Retry-After,
records nothing, and the retry the server asked for is paid as if nothing had happened."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.learning import rules
from app.learning.models import HeartbeatRecord
from app.study import api

pytestmark = pytest.mark.filterwarnings("error")

HEARTBEAT_S = 15.0
# When the front proxy received a request that then waited longer than the server allows.
LATE = {"X-Request-Start": f"t={time.time() - api.HEARTBEAT_MAX_WAIT_S - 10:.3f}"}


def recorded(app) -> tuple[int, int | None]:
    """Heartbeat evidence rows, and the newest sequence number judged."""
    with app.app_context():
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(HeartbeatRecord))
        seq = db.session.scalar(sa.text("SELECT max(last_seq) FROM study_session"))
        return rows, seq


def retry_after(reply) -> float:
    """When the player sends it again: Retry-After plus the most jitter it adds."""
    return float(reply.headers["Retry-After"]) + 1.0


def test_a_heartbeat_that_waited_too_long_is_shed_and_records_nothing(fresh_app, steady):
    before = recorded(fresh_app)
    reply = steady.beat(headers={"X-Request-Start": LATE["X-Request-Start"]})
    assert reply.status_code == 503
    assert reply.get_json()["error"]["code"] == "overloaded"
    assert reply.get_json()["error"]["message"]
    assert int(reply.headers["Retry-After"]) == api.RETRY_AFTER_S
    assert recorded(fresh_app) == before


def test_the_retry_the_server_asked_for_costs_no_study_time(fresh_app, steady):
    shed = steady.beat(headers=LATE)
    assert shed.status_code == 503
    again = steady.beat(after=retry_after(shed))
    assert again.status_code == 200
    # Paid for the whole time played since the last heartbeat the server took.
    assert again.get_json()["credited_s"] == HEARTBEAT_S + retry_after(shed)


def test_two_sheds_in_a_row_still_cost_nothing(fresh_app, steady):
    first = steady.beat(headers=LATE)
    second = steady.beat(after=retry_after(first), headers=LATE)
    assert (first.status_code, second.status_code) == (503, 503)
    late_by = retry_after(first) + retry_after(second)
    assert HEARTBEAT_S + late_by <= rules.CAP_HEARTBEATS * HEARTBEAT_S  # the documented budget
    again = steady.beat(after=retry_after(second))
    assert again.get_json()["credited_s"] == HEARTBEAT_S + late_by


def test_a_heartbeat_finding_every_slot_busy_is_shed_after_its_wait(fresh_app, steady):
    gate = api.HeartbeatGate(1, max_wait_s=0.05)
    fresh_app.extensions["veriskill.heartbeat_gate"] = gate
    try:
        gate.slots.acquire()  # another heartbeat of this process is being worked on
        try:
            assert steady.beat().status_code == 503
        finally:
            gate.slots.release()
        assert steady.beat(after=retry_after_s()).status_code == 200
    finally:
        fresh_app.extensions.pop("veriskill.heartbeat_gate")


def retry_after_s() -> float:
    return api.RETRY_AFTER_S + 1.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("t=1800000000.123", 1800000000.123),
        ("t=1800000000123", 1800000000.123),
        ("t=1800000000123000", 1800000000.123),
        ("1800000000", 1800000000.0),
        ("", None),
        ("t=soon", None),
        ("t=nan", None),
    ],
)
def test_the_proxy_stamp_is_read_in_any_unit(fresh_app, header, expected):
    with fresh_app.test_request_context(headers={"X-Request-Start": header}):
        value = api.request_start()
    assert value == pytest.approx(expected) if expected is not None else value is None
