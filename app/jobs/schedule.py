"""Periodic tasks, run by a timer thread inside every kind of job worker, once per interval.

There is no separate scheduler process to forget: the embedded thread backend (`make run`),
each `flask jobs work` process and each Celery worker (through a worker signal) start a
`Timer`. Every few seconds each timer asks the database for each task's turn with one
conditional UPDATE of its `job_schedule` row (`last_run_at` older than the interval): only the
process whose update matched runs the task, so however many workers run, a shared task runs
once per interval, and it still runs while any one of them lives. Tasks registered with
`local=True` (tidying this host's temporary files) skip the database and run in every process.

Register a task at import time, where its module is loaded by every worker:

    schedule.register("sweep_jobs", "JOB_SWEEP_S", sweep)

The setting holds the interval in seconds. A task commits its own work; an error is logged
and the task is tried again at its next turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from app.db import savepoint, utcnow
from app.extensions import db
from app.jobs.models import ScheduleRun

log = logging.getLogger(__name__)
# A timer looks at the schedule this often at most, and at least four times per shortest
# interval, so a task runs within a quarter of its interval of being due.
MAX_TICK_S = 5.0
MIN_TICK_S = 0.2


@dataclass(frozen=True)
class Periodic:
    name: str
    every_s_setting: str
    fn: Callable[[], object]
    local: bool = False


TASKS: dict[str, Periodic] = {}


def register(
    name: str, every_s_setting: str, fn: Callable[[], object] | None = None, *, local: bool = False
) -> Any:
    """Run `fn` every `config[every_s_setting]` seconds; usable as a decorator without `fn`."""
    if len(name) > 60:
        raise ValueError(f"a periodic task's name has at most 60 characters: {name!r}")

    def add(task: Callable[[], object]) -> Callable[[], object]:
        TASKS[name] = Periodic(name, every_s_setting, task, local)
        return task

    return add if fn is None else add(fn)


def _every_s(task: Periodic) -> float | None:
    value = current_app.config.get(task.every_s_setting)
    if value is None:
        return None
    return float(value)


def _take_turn(name: str, every_s: float, by: str) -> bool:
    """This process's turn at a shared task: True for exactly one caller per interval."""
    now = utcnow()
    due_before = now - timedelta(seconds=every_s)
    last = db.session.execute(
        sa.select(ScheduleRun.last_run_at).where(ScheduleRun.name == name)
    ).first()
    if last is not None and last.last_run_at is not None and last.last_run_at > due_before:
        db.session.commit()
        return False  # not due: no write, so idle timers never take SQLite's write lock
    if last is None:
        try:
            with savepoint(db.session):
                db.session.add(ScheduleRun(name=name, last_run_at=None))
        except sa.exc.IntegrityError:
            pass  # another process added it first
    taken = db.session.execute(
        sa.update(ScheduleRun)
        .where(
            ScheduleRun.name == name,
            sa.or_(
                ScheduleRun.last_run_at.is_(None),
                ScheduleRun.last_run_at <= due_before,
            ),
        )
        .values(last_run_at=now, last_run_by=by)
    )
    db.session.commit()
    return taken.rowcount == 1


class _LocalTurns:
    """When each `local` task last ran in this process."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def take(self, name: str, every_s: float) -> bool:
        now = time.monotonic()
        if now - self.last.get(name, -float("inf")) < every_s:
            return False
        self.last[name] = now
        return True


_LOCAL = _LocalTurns()


def run_due(*, by: str | None = None, local_turns: _LocalTurns | None = None) -> list[str]:
    """Run every task whose turn this process gets now; returns their names."""
    from app.jobs.service import worker_id

    who = by or worker_id()
    turns = local_turns or _LOCAL
    ran = []
    for task in list(TASKS.values()):
        every_s = _every_s(task)
        if every_s is None or every_s <= 0:
            continue
        try:
            mine = (
                turns.take(task.name, every_s)
                if task.local
                else _take_turn(task.name, every_s, who)
            )
        except sa.exc.SQLAlchemyError as error:
            log.warning("schedule: no turn for %s: %s", task.name, error)
            db.session.rollback()
            db.session.remove()
            continue
        if not mine:
            continue
        try:
            task.fn()
            db.session.commit()
        except Exception:
            log.exception("schedule: %s failed; it runs again at its next turn", task.name)
            db.session.rollback()
        finally:
            db.session.remove()
        ran.append(task.name)
    return ran


def tick_s(app: Flask) -> float:
    intervals = [
        float(app.config[task.every_s_setting])
        for task in TASKS.values()
        if app.config.get(task.every_s_setting)
    ]
    shortest = min(intervals, default=MAX_TICK_S * 4)
    return max(MIN_TICK_S, min(MAX_TICK_S, shortest / 4))


class Timer(threading.Thread):
    """The periodic tasks of one process, on a daemon thread; `stopped.set()` ends it."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="job-schedule", daemon=True)
        self.app = app
        self.stopped = threading.Event()
        self.turns = _LocalTurns()

    def run(self) -> None:
        with self.app.app_context():
            every = tick_s(self.app)
            while True:
                try:
                    run_due(local_turns=self.turns)
                except Exception:
                    log.exception("schedule: tick failed")
                    db.session.remove()
                if self.stopped.wait(every):
                    return
