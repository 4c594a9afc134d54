"""Periodic tasks, run by a timer thread inside every kind of job worker, once per turn.

There is no separate scheduler process to forget: the embedded thread backend (`make run`),
each `flask jobs work` process and each Celery worker (through a worker signal) start a
`Timer`. Every few seconds each timer asks the database for each task's turn with one
conditional UPDATE of its `job_schedule` row (`last_run_at` older than the turn): only the
process whose update matched runs the task, so however many workers run, a shared task runs
once per turn, and it still runs while any one of them lives. Tasks registered with
`local=True` (tidying this host's temporary files) skip the database and run in every process.
A deployment that prefers one scheduler unit runs `flask schedule run` (a timer and nothing
else) and sets SCHEDULE_IN_WORKERS=off: the workers' timers then run only their local tasks.

Register a task at import time, in a module every process loads (one call, whatever the rule):

    schedule.register("sweep_jobs", "JOB_SWEEP_S", sweep)
    schedule.register("stats_freeze", "STATS_FREEZE_AT", freeze)

The setting holds the rule (`app.jobs.when`): seconds, or a calendar rule on the bureau's
clock such as `monthly 1 01:00`. A task commits its own work and may return what it handled
(a count, or a list): every shared run is recorded in `job_schedule_run` with its outcome, its
error and that count. An error is logged and recorded, never stops the timer, and the task is
tried again at its next turn. `flask schedule list` shows it all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, current_app

from app.db import rowcount, savepoint, utcnow
from app.extensions import db
from app.jobs import when
from app.jobs.models import RunOutcome, ScheduleRun, ScheduleTimer, TaskRun

log = logging.getLogger(__name__)
# A timer looks at the schedule this often at most, and at least four times per shortest
# interval, so a task runs within a quarter of its interval of being due.
MAX_TICK_S = 5.0
MIN_TICK_S = 0.2
# A timer that takes shared turns says it is alive this often; `flask schedule list` counts it
# alive while its last word is younger than TIMER_ALIVE_S.
TIMER_HEARTBEAT_S = 30.0
TIMER_ALIVE_S = 3 * TIMER_HEARTBEAT_S
# Rows of timers silent this long are dropped with the old history.
TIMER_FORGET_S = 86400.0
# A failed run keeps this much of its error (the log has the traceback).
ERROR_MAX_CHARS = 2000
# Expired rows are deleted this many per transaction, and at most this many batches per run,
# so a backlog never holds a long transaction; the rest goes at the next turn.
BATCH_ROWS = 1000
MAX_BATCHES = 50
TIMER, OPERATOR = "timer", "operator"


@dataclass(frozen=True)
class Periodic:
    name: str
    setting: str  # the config key holding the rule (`app.jobs.when`)
    fn: Callable[[], object]
    local: bool = False


TASKS: dict[str, Periodic] = {}


def register(
    name: str, setting: str, fn: Callable[[], object] | None = None, *, local: bool = False
) -> Any:
    """Run `fn` by the rule in `config[setting]`; usable as a decorator without `fn`."""
    if len(name) > 60:
        raise ValueError(f"a periodic task's name has at most 60 characters: {name!r}")

    def add(task: Callable[[], object]) -> Callable[[], object]:
        TASKS[name] = Periodic(name, setting, task, local)
        return task

    return add if fn is None else add(fn)


def rule_of(task: Periodic) -> when.Rule | None:
    """The task's rule from its setting; None when off. ValueError for a malformed setting."""
    return when.parse(current_app.config.get(task.setting))


def bureau_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def _take_turn(name: str, due_before: datetime, now: datetime, by: str) -> bool:
    """This process's turn at a shared task: True for exactly one caller per turn."""
    last = db.session.execute(
        sa.select(ScheduleRun.last_run_at).where(ScheduleRun.name == name)
    ).first()
    if last is not None and last.last_run_at is not None and last.last_run_at >= due_before:
        db.session.commit()
        return False  # not due: no write, so idle timers never take SQLite's write lock
    if last is None:
        _add_schedule_row(name)
    taken = db.session.execute(
        sa.update(ScheduleRun)
        .where(
            ScheduleRun.name == name,
            sa.or_(ScheduleRun.last_run_at.is_(None), ScheduleRun.last_run_at < due_before),
        )
        .values(last_run_at=now, last_run_by=by)
    )
    db.session.commit()
    return rowcount(taken) == 1


def _add_schedule_row(name: str) -> None:
    try:
        with savepoint(db.session):
            db.session.add(ScheduleRun(name=name, last_run_at=None))
    except sa.exc.IntegrityError:
        pass  # another process added it first


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


def _items(result: object) -> int | None:
    """What a task handled, from what it returned: a count, or the things it handled."""
    if result is None or isinstance(result, bool | str):
        return None
    if isinstance(result, int):
        return result
    if isinstance(result, Sized):
        return len(result)
    return None


def _start_record(task: Periodic, by: str, trigger: str, started_at: datetime) -> int:
    run = TaskRun(name=task.name, trigger=trigger, run_by=by, started_at=started_at)
    db.session.add(run)
    db.session.commit()
    return run.id


def _end_record(
    task: Periodic,
    run_id: int | None,
    *,
    by: str,
    trigger: str,
    started_at: datetime,
    outcome: RunOutcome,
    items: int | None,
    error: str | None,
) -> None:
    """Write how a run ended (a local task's run only now, in one row); never raises."""
    values = {"finished_at": utcnow(), "outcome": outcome, "items": items, "error": error}
    try:
        if run_id is None:
            db.session.add(
                TaskRun(name=task.name, trigger=trigger, run_by=by, started_at=started_at, **values)
            )
        else:
            db.session.execute(sa.update(TaskRun).where(TaskRun.id == run_id).values(**values))
        if not task.local:
            db.session.execute(
                sa.update(ScheduleRun)
                .where(ScheduleRun.name == task.name)
                .values(last_outcome=outcome)
            )
        db.session.commit()
    except sa.exc.SQLAlchemyError:
        log.exception("schedule: could not record how %s ended (%s)", task.name, outcome)
        db.session.rollback()


def execute(task: Periodic, *, by: str, trigger: str, started_at: datetime) -> RunOutcome:
    """Run one task and record the run; an error is logged and recorded, never raised.

    A shared task's run is recorded as it starts (so a run in progress, or one whose process
    died, shows); a local task, run by every process every few seconds, is recorded only when
    it handled something or failed, so that tidying nothing writes nothing."""
    record_now = not task.local or trigger == OPERATOR
    run_id = None
    if record_now:
        try:
            run_id = _start_record(task, by, trigger, started_at)
        except sa.exc.SQLAlchemyError:
            log.exception("schedule: could not record that %s started", task.name)
            db.session.rollback()
    items: int | None = None
    error: str | None = None
    try:
        items = _items(task.fn())
        db.session.commit()
        outcome = RunOutcome.OK
    except Exception as failure:
        log.exception("schedule: %s failed; it runs again at its next turn", task.name)
        db.session.rollback()
        outcome = RunOutcome.FAILED
        error = f"{type(failure).__name__}: {failure}"[:ERROR_MAX_CHARS]
    if record_now or outcome is RunOutcome.FAILED or items:
        _end_record(
            task,
            run_id,
            by=by,
            trigger=trigger,
            started_at=started_at,
            outcome=outcome,
            items=items,
            error=error,
        )
    return outcome


def run_due(
    *, by: str | None = None, local_turns: _LocalTurns | None = None, shared: bool = True
) -> list[str]:
    """Run every task whose turn this process gets now; returns their names. Without
    `shared`, only the local tasks (a worker beside a dedicated scheduler)."""
    from app.jobs.service import worker_id

    who = by or worker_id()
    turns = local_turns or _LOCAL
    tz = bureau_tz()
    ran = []
    for task in list(TASKS.values()):
        if not (task.local or shared):
            continue
        try:
            rule = rule_of(task)
        except ValueError as error:
            log.warning("schedule: %s is off: %s: %s", task.name, task.setting, error)
            continue
        if rule is None:
            continue
        now = utcnow()
        try:
            if task.local:
                if not isinstance(rule, when.Every):
                    log.warning("schedule: %s runs in every process: give it seconds", task.name)
                    continue
                mine = turns.take(task.name, rule.seconds)
            else:
                mine = _take_turn(task.name, rule.due_before(now, tz), now, who)
        except sa.exc.SQLAlchemyError as error:
            log.warning("schedule: no turn for %s: %s", task.name, error)
            db.session.rollback()
            db.session.remove()
            continue
        if not mine:
            continue
        try:
            execute(task, by=who, trigger=TIMER, started_at=now)
        finally:
            db.session.remove()
        ran.append(task.name)
    return ran


def run_now(name: str, *, by: str) -> RunOutcome:
    """An operator's run of one task, now, in this process, recorded as theirs. It counts as
    the task's turn: the schedule's next run comes a full turn later."""
    task = TASKS[name]
    now = utcnow()
    if not task.local:
        if db.session.get(ScheduleRun, name) is None:
            _add_schedule_row(name)
        db.session.execute(
            sa.update(ScheduleRun)
            .where(ScheduleRun.name == name)
            .values(last_run_at=now, last_run_by=by)
        )
        db.session.commit()
    return execute(task, by=by, trigger=OPERATOR, started_at=now)


# --------------------------------------------------------------------------- upkeep


def delete_in_batches(model: Any, condition: Any) -> int:
    """Delete the rows of `model` matching `condition`, BATCH_ROWS per committed transaction
    and at most MAX_BATCHES of them; returns how many went. The schedule's tasks use it for
    whatever expires, so none holds a long transaction over a backlog."""
    deleted = 0
    for _ in range(MAX_BATCHES):
        ids = list(
            db.session.scalars(
                sa.select(model.id).where(condition).order_by(model.id).limit(BATCH_ROWS)
            )
        )
        if not ids:
            break
        result = db.session.execute(sa.delete(model).where(model.id.in_(ids), condition))
        db.session.commit()
        deleted += rowcount(result)
        if len(ids) < BATCH_ROWS:
            break
    return deleted


def prune_history() -> int:
    """Keep the newest SCHEDULE_HISTORY_RUNS runs of each task (the history stays bounded
    whatever runs every few seconds) and forget timers silent for a day."""
    keep = int(current_app.config["SCHEDULE_HISTORY_RUNS"])
    deleted = 0
    for name in list(db.session.scalars(sa.select(TaskRun.name).distinct())):
        oldest_kept = db.session.scalar(
            sa.select(TaskRun.id)
            .where(TaskRun.name == name)
            .order_by(TaskRun.id.desc())
            .offset(keep - 1)
            .limit(1)
        )
        if oldest_kept is not None:
            deleted += delete_in_batches(
                TaskRun, sa.and_(TaskRun.name == name, TaskRun.id < oldest_kept)
            )
    silent_since = utcnow() - timedelta(seconds=TIMER_FORGET_S)
    db.session.execute(sa.delete(ScheduleTimer).where(ScheduleTimer.seen_at < silent_since))
    db.session.commit()
    return deleted


register("prune_schedule_history", "EXPIRY_SWEEP_S", prune_history)


# --------------------------------------------------------------------------- timers


def tick_s(app: Flask) -> float:
    intervals = []
    for task in TASKS.values():
        try:
            rule = when.parse(app.config.get(task.setting))
        except ValueError:
            continue
        if isinstance(rule, when.Every):
            intervals.append(rule.seconds)
    shortest = min(intervals, default=MAX_TICK_S * 4)
    return max(MIN_TICK_S, min(MAX_TICK_S, shortest / 4))


def _heartbeat(timer_id: str, mode: str, started_at: datetime) -> None:
    now = utcnow()
    seen = db.session.execute(
        sa.update(ScheduleTimer).where(ScheduleTimer.id == timer_id).values(seen_at=now)
    )
    if rowcount(seen) == 0:
        db.session.add(ScheduleTimer(id=timer_id, mode=mode, started_at=started_at, seen_at=now))
    db.session.commit()


class Timer(threading.Thread):
    """The periodic tasks of one process, on a daemon thread; `stopped.set()` ends it.

    In a job worker it takes shared turns unless SCHEDULE_IN_WORKERS is off (then it runs only
    the local tasks); `dedicated` (`flask schedule run`) always takes them. A timer that takes
    shared turns says it is alive from a thread of its own, so a long task (a big purge) does
    not make it look dead."""

    def __init__(self, app: Flask, *, dedicated: bool = False) -> None:
        super().__init__(name="job-schedule", daemon=True)
        self.app = app
        self.stopped = threading.Event()
        self.turns = _LocalTurns()
        self.mode = "dedicated" if dedicated else "worker"
        self.shared = dedicated or bool(app.config.get("SCHEDULE_IN_WORKERS", True))

    def run(self) -> None:
        from app.jobs.service import worker_id

        me = worker_id()
        pulse = threading.Thread(
            target=self._say_alive, args=(me, utcnow()), name="job-schedule-heartbeat", daemon=True
        )
        if self.shared:
            pulse.start()
        with self.app.app_context():
            every = tick_s(self.app)
            try:
                while True:
                    try:
                        run_due(by=me, local_turns=self.turns, shared=self.shared)
                    except Exception:
                        log.exception("schedule: tick failed")
                        db.session.remove()
                    if self.stopped.wait(every):
                        return
            finally:
                if self.shared:
                    pulse.join(timeout=30)
                    self._say_gone(me)

    def _say_alive(self, me: str, started_at: datetime) -> None:
        with self.app.app_context():
            while True:
                try:
                    _heartbeat(me, self.mode, started_at)
                except sa.exc.SQLAlchemyError as error:
                    log.warning("schedule: heartbeat not written: %s", error)
                    db.session.rollback()
                finally:
                    db.session.remove()
                if self.stopped.wait(TIMER_HEARTBEAT_S):
                    return

    def _say_gone(self, me: str) -> None:
        try:
            db.session.execute(sa.delete(ScheduleTimer).where(ScheduleTimer.id == me))
            db.session.commit()
        except sa.exc.SQLAlchemyError:
            db.session.rollback()
        finally:
            db.session.remove()
