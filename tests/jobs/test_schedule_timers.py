"""Timers in real processes, on both databases: two job workers share each turn of a task; a
dedicated `flask schedule run` takes every turn while workers with SCHEDULE_IN_WORKERS=off
take none; `flask schedule list` sees the timers alive.
"""

from __future__ import annotations

import socket
import sys
import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.jobs.models import RunOutcome, ScheduleTimer, TaskRun
from tests.jobs.test_workers import kill_group, start, worker_env

pytestmark = pytest.mark.slow
JOB_WORKER = [sys.executable, "-m", "flask", "jobs", "work"]
SCHEDULER = [sys.executable, "-m", "flask", "schedule", "run"]
TASK = "expire_sms_codes"  # every EXPIRY_SWEEP_S, here every second
RUNS_WANTED = 4


def timer_env(app, tmp_path: Path, **extra: str) -> dict[str, str]:
    return worker_env(
        app,
        AUDIT_KEY=app.config["AUDIT_KEY"],
        AUDIT_ANCHOR_PATH=str(tmp_path / "anchors.jsonl"),
        EXPIRY_SWEEP_S="1",
        JOB_SWEEP_S="1",
        **extra,
    )


def recorded_runs(app) -> list[TaskRun]:
    with app.app_context():
        rows = list(
            db.session.scalars(sa.select(TaskRun).where(TaskRun.name == TASK).order_by(TaskRun.id))
        )
        db.session.expunge_all()
        db.session.remove()
        return rows


def wait_for_runs(app, log: Path, count: int = RUNS_WANTED) -> list[TaskRun]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = recorded_runs(app)
        if len(rows) >= count:
            return rows
        time.sleep(0.3)
    pytest.fail(f"{TASK} ran {len(rows)} time(s); log:\n{log.read_text()[-3000:]}")


def live_timers(app) -> dict[str, str]:
    with app.app_context():
        timers = dict(db.session.execute(sa.select(ScheduleTimer.id, ScheduleTimer.mode)).all())
        db.session.remove()
        return timers


def wait_for_timers(app, ids: set[str], log: Path) -> dict[str, str]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        timers = live_timers(app)
        if ids <= set(timers):
            return timers
        time.sleep(0.3)
    pytest.fail(f"timers {ids} never said they were alive; log:\n{log.read_text()[-3000:]}")


def assert_once_per_interval(rows: list[TaskRun]) -> None:
    """Each turn went to one process: no two runs began within one interval of each other."""
    starts = [row.started_at for row in rows]
    assert all(later - earlier >= timedelta(seconds=1) for earlier, later in pairwise(starts))
    assert {row.outcome for row in rows} == {RunOutcome.OK}


def test_two_job_workers_share_each_turn_and_both_show_as_alive(fresh_app, runner, tmp_path):
    log = tmp_path / "workers.log"
    env = timer_env(fresh_app, tmp_path)
    workers = [start(JOB_WORKER, env, log) for _ in range(2)]
    try:
        ids = {f"{hostname()}:{worker.pid}" for worker in workers}
        wait_for_timers(fresh_app, ids, log)
        rows = wait_for_runs(fresh_app, log)
        assert {row.run_by for row in rows} <= ids
        assert_once_per_interval(rows)
        listed = runner.invoke(args=["schedule", "list"])
        assert listed.exit_code == 0, listed.output
        last = listed.output.splitlines()[-1]
        assert last.startswith("timers: 2 alive") and all(f"{i} (worker" in last for i in ids)
    finally:
        for worker in workers:
            kill_group(worker)


def test_a_dedicated_scheduler_takes_every_turn_when_workers_keep_out(fresh_app, runner, tmp_path):
    log = tmp_path / "scheduler.log"
    worker = start(JOB_WORKER, timer_env(fresh_app, tmp_path, SCHEDULE_IN_WORKERS="off"), log)
    scheduler = start(SCHEDULER, timer_env(fresh_app, tmp_path), log)
    try:
        me = f"{hostname()}:{scheduler.pid}"
        wait_for_timers(fresh_app, {me}, log)
        wait_for_log(log, "polling every")  # the worker is up (and its timer with it)
        before = len(recorded_runs(fresh_app))
        rows = wait_for_runs(fresh_app, log, before + RUNS_WANTED)
        assert {row.run_by for row in rows} == {me}
        assert_once_per_interval(rows)
        assert live_timers(fresh_app) == {me: "dedicated"}
        listed = runner.invoke(args=["schedule", "list"])
        assert listed.output.splitlines()[-1].startswith(f"timers: 1 alive: {me} (dedicated")
        scheduler.terminate()  # SIGTERM: a clean stop takes its timer row away
        scheduler.wait(timeout=30)
        assert live_timers(fresh_app) == {}
    finally:
        kill_group(scheduler)
        kill_group(worker)


def hostname() -> str:
    return socket.gethostname()


def wait_for_log(log: Path, text: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.3)
    pytest.fail(f"never logged {text!r}:\n{log.read_text()[-3000:]}")
