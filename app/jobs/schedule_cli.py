"""`flask schedule list | history | run-now | run`: the periodic tasks, for an operator.

`list` says what runs when, when it last ran and how that ended, when it is next due, and
which timers are alive; `history` the latest runs; `run-now` runs one task at once (recorded
as the operator's run); `run` is a dedicated scheduler: a timer and nothing else, for hosts
that set SCHEDULE_IN_WORKERS=off in the workers.
"""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from app.db import utcnow
from app.extensions import db, real_app
from app.jobs import schedule, when
from app.jobs.models import RunOutcome, ScheduleRun, ScheduleTimer, TaskRun

schedule_cli = AppGroup("schedule", help="Periodic tasks: what runs when, and how it went.")
# Errors are cut to this many characters in `list` (`history` shows them whole).
LIST_ERROR_CHARS = 60


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    return "-" if moment is None else f"{moment.astimezone(tz):%Y-%m-%d %H:%M:%S}"


def _latest_runs() -> dict[str, TaskRun]:
    newest = sa.select(sa.func.max(TaskRun.id)).group_by(TaskRun.name)
    return {
        run.name: run
        for run in db.session.scalars(sa.select(TaskRun).where(TaskRun.id.in_(newest)))
    }


def _outcome(run: TaskRun | None, tz: ZoneInfo) -> str:
    if run is None:
        return "-"
    if run.outcome is RunOutcome.RUNNING:
        return f"running since {_when(run.started_at, tz)}"
    if run.outcome is RunOutcome.FAILED:
        return f"failed: {(run.error or '')[:LIST_ERROR_CHARS]}"
    return "ok" if run.items is None else f"ok, {run.items} handled"


def alive_timers(now: datetime) -> list[dict[str, Any]]:
    """Timers whose heartbeat is recent: those of stopped processes fall silent."""
    recent = now - timedelta(seconds=schedule.TIMER_ALIVE_S)
    query = sa.select(ScheduleTimer).where(ScheduleTimer.seen_at >= recent)
    return [
        {"id": timer.id, "mode": timer.mode, "seen_at": timer.seen_at}
        for timer in db.session.scalars(query.order_by(ScheduleTimer.id))
    ]


def task_rows(now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One dict per registered task: its rule, last run, outcome and next due time."""
    turns = {row.name: row for row in db.session.scalars(sa.select(ScheduleRun))}
    latest = _latest_runs()
    rows = []
    for task in sorted(schedule.TASKS.values(), key=lambda task: task.name):
        turn = turns.get(task.name)
        run = latest.get(task.name)
        last_at = turn.last_run_at if turn is not None else (run.started_at if run else None)
        row: dict[str, Any] = {
            "name": task.name,
            "setting": task.setting,
            "local": task.local,
            "last_run_at": last_at,
            "last_run_by": turn.last_run_by if turn is not None else (run.run_by if run else None),
            "outcome": _outcome(run, tz),
        }
        try:
            rule = schedule.rule_of(task)
        except ValueError as error:
            row.update(rule=f"bad setting: {error}", next_due=None, due="never (bad setting)")
            rows.append(row)
            continue
        row["rule"] = "off" if rule is None else rule.describe()
        if rule is None:
            row.update(next_due=None, due="off")
        elif task.local:
            row.update(next_due=None, due="in every process")
        else:
            due = rule.next_due(turn.last_run_at if turn is not None else None, now, tz)
            row.update(next_due=due, due="due now" if due <= now else _when(due, tz))
        rows.append(row)
    return rows


@schedule_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def list_tasks(as_json: bool) -> None:
    """Every periodic task: its rule (and the setting holding it), when it last ran and how,
    when it is next due; then the timers alive. Times are the bureau's (TIMEZONE)."""
    now = utcnow()
    tz = schedule.bureau_tz()
    rows = task_rows(now, tz)
    timers = alive_timers(now)
    if as_json:
        click.echo(json.dumps({"tasks": rows, "timers": timers}, default=str, ensure_ascii=False))
        return
    table = [("TASK", "RULE (SETTING)", f"LAST RUN ({tz.key})", "OUTCOME", "NEXT DUE")]
    for row in rows:
        rule = f"{row['rule']} ({row['setting']})"
        last = _when(row["last_run_at"], tz) if row["last_run_at"] else "never"
        table.append((row["name"], rule, last, row["outcome"], row["due"]))
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True)]
        click.echo("  ".join([*cells, line[4]]))
    if not timers:
        click.echo(
            "timers: none alive: shared tasks wait for a job worker (with SCHEDULE_IN_WORKERS "
            "on) or `flask schedule run`"
        )
        return
    described = ", ".join(
        f"{timer['id']} ({timer['mode']}, seen {(now - timer['seen_at']).total_seconds():.0f}s ago)"
        for timer in timers
    )
    click.echo(f"timers: {len(timers)} alive: {described}")


@schedule_cli.command("history")
@click.argument("name", required=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
def history(name: str | None, limit: int) -> None:
    """The latest recorded runs (of one task with NAME), newest first, one per line."""
    tz = schedule.bureau_tz()
    query = sa.select(TaskRun).order_by(TaskRun.id.desc()).limit(limit)
    if name is not None:
        query = query.where(TaskRun.name == name)
    for run in db.session.scalars(query):
        items = "" if run.items is None else f"\t{run.items} handled"
        error = f"\t{run.error}" if run.error else ""
        click.echo(
            f"{_when(run.started_at, tz)}\t{_when(run.finished_at, tz)}\t{run.name}\t"
            f"{run.outcome.value}\t{run.trigger} {run.run_by}{items}{error}"
        )


def _task(name: str) -> schedule.Periodic:
    if name not in schedule.TASKS:
        raise click.BadParameter(
            f"no such task; the tasks are {', '.join(sorted(schedule.TASKS))}", param_hint="NAME"
        )
    return schedule.TASKS[name]


@schedule_cli.command("run-now")
@click.argument("name")
@click.pass_context
def run_now(ctx: click.Context, name: str) -> None:
    """Run the task NAME now, in this process, whatever its rule; recorded as an operator's
    run, and counted as its turn. Exit status 1 when it failed."""
    from app.jobs.service import worker_id

    task = _task(name)
    outcome = schedule.run_now(task.name, by=worker_id())
    run = db.session.scalar(
        sa.select(TaskRun).where(TaskRun.name == task.name).order_by(TaskRun.id.desc()).limit(1)
    )
    click.echo(f"{task.name}: {_outcome(run, schedule.bureau_tz())}")
    ctx.exit(0 if outcome is RunOutcome.OK else 1)


@schedule_cli.command("run")
def run_timer() -> None:
    """Run the periodic tasks and nothing else until SIGTERM or Ctrl-C: the dedicated
    scheduler. Set SCHEDULE_IN_WORKERS=off for the job workers when you run it; it is safe
    to run more than one (each turn still goes to one process)."""
    app = real_app()
    timer = schedule.Timer(app, dedicated=True)

    def stop(*_: object) -> None:
        timer.stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rules = []
    for task in schedule.TASKS.values():
        try:
            rule = when.parse(app.config.get(task.setting))
        except ValueError as error:
            raise click.ClickException(f"{task.name}: {task.setting}: {error}") from None
        rules.append(f"{task.name} {'off' if rule is None else rule.describe()}")
    click.echo(f"scheduler running {len(rules)} task(s): {'; '.join(sorted(rules))}")
    timer.run()
