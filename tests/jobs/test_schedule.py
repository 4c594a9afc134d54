"""The schedule in this process, on both databases: rules, recorded runs, the operator's
commands, and the tasks that delete what has expired. Timers in separate processes are in
test_schedule_timers.py.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.courses.models import Lesson, LessonStatus, UploadPart
from app.db import utcnow
from app.extensions import db
from app.identity import service as identity
from app.identity.models import ApiToken, CodePurpose, SmsCode, User
from app.jobs import schedule, when
from app.jobs.models import RunOutcome, ScheduleRun, ScheduleTimer, TaskRun
from app.media.service import storage
from app.verification import cli as verification_cli
from app.verification import service as verification
from app.verification.models import Evidence, EvidenceKind, PurgeRun
from tests.conftest import make_platform, make_trainee
from tests.courses.helpers import CLIP, add_lesson, create_course, put_chunk
from tests.verification.photos import photo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A moment on the bureau's clock, as the UTC the database keeps."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC)


def runs(name: str) -> list[TaskRun]:
    db.session.expire_all()
    return list(
        db.session.scalars(sa.select(TaskRun).where(TaskRun.name == name).order_by(TaskRun.id))
    )


@pytest.fixture
def only(monkeypatch):
    """An empty task table for the test's own tasks (the registered ones stay untouched)."""
    monkeypatch.setattr(schedule, "TASKS", {})


# --------------------------------------------------------------------------- rules


def test_a_monthly_rule_falls_on_day_one_of_the_bureaus_calendar():
    rule = when.parse("monthly 1 01:00")
    assert rule == when.Calendar("monthly", 1, datetime.strptime("01:00", "%H:%M").time())
    # 2026-12-01 00:30 in Shanghai is still November 30th in UTC: the bureau's day counts.
    assert rule.previous(at("2026-12-01T00:30"), SHANGHAI) == at("2026-11-01T01:00")
    assert rule.previous(at("2026-12-01T01:00"), SHANGHAI) == at("2026-12-01T01:00")
    assert rule.following(at("2026-12-01T01:00"), SHANGHAI) == at("2027-01-01T01:00")
    # Ran this month: next month. Missed this month's (no timer was alive): due at once.
    assert rule.next_due(at("2026-12-01T01:00"), at("2026-12-15T09:00"), SHANGHAI) == at(
        "2027-01-01T01:00"
    )
    assert rule.next_due(at("2026-11-01T01:00"), at("2026-12-15T09:00"), SHANGHAI) <= at(
        "2026-12-15T09:00"
    )
    assert rule.describe() == "monthly on day 1 at 01:00"


def test_daily_and_weekly_rules_and_intervals():
    daily = when.parse("daily 03:00")
    assert daily.previous(at("2026-12-08T02:59"), SHANGHAI) == at("2026-12-07T03:00")
    weekly = when.parse("Weekly MON 02:00")  # case and spacing do not matter
    assert weekly.previous(at("2026-12-08T09:00"), SHANGHAI) == at("2026-12-07T02:00")  # a Monday
    assert weekly.following(at("2026-12-08T09:00"), SHANGHAI) == at("2026-12-14T02:00")
    assert when.parse("15") == when.parse(15) == when.Every(15.0)
    assert when.parse(3600).describe() == "every 1h"
    assert [when.parse(off) for off in (None, 0, "", "off", "0")] == [None] * 5


@pytest.mark.parametrize(
    "bad", ["monthly 31 01:00", "monthly 01:00", "daily 25:00", "weekly xyz 01:00", "hourly", "-5"]
)
def test_a_malformed_rule_is_refused_with_what_is_wrong(bad):
    with pytest.raises(ValueError):
        when.parse(bad)


# --------------------------------------------------------------------------- turns and records


def test_a_calendar_task_is_one_register_call_and_runs_once_per_occurrence(ctx, only, monkeypatch):
    """What the monthly statistics freeze needs: one register call and a setting."""
    ran: list[str] = []
    monkeypatch.setitem(ctx.config, "TEST_FREEZE_AT", "monthly 1 01:00")
    schedule.register("test_freeze", "TEST_FREEZE_AT", lambda: ran.append("freeze"))
    assert schedule.run_due(by="a") == ["test_freeze"]  # this month's occurrence was missed
    assert schedule.run_due(by="b") == [] and ran == ["freeze"]
    latest = when.parse("monthly 1 01:00").previous(utcnow(), SHANGHAI)
    db.session.execute(sa.update(ScheduleRun).values(last_run_at=latest - timedelta(seconds=1)))
    db.session.commit()
    assert schedule.run_due(by="c") == ["test_freeze"] and ran == ["freeze", "freeze"]


def test_every_run_is_recorded_with_its_outcome_count_and_error(ctx, only, caplog):
    def broken() -> None:
        raise RuntimeError("disk on fire " + "x" * 5000)

    schedule.register("test_count", "JOB_SWEEP_S", lambda: [1, 2, 3])
    schedule.register("test_broken", "JOB_SWEEP_S", broken)
    schedule.register("test_quiet", "JOB_SWEEP_S", lambda: None)
    assert schedule.run_due(by="host:1") == ["test_count", "test_broken", "test_quiet"]
    (counted,) = runs("test_count")
    assert (counted.outcome, counted.items, counted.error) == (RunOutcome.OK, 3, None)
    assert counted.run_by == "host:1" and counted.trigger == "timer"
    assert counted.finished_at is not None and counted.finished_at >= counted.started_at
    (failed,) = runs("test_broken")
    assert failed.outcome is RunOutcome.FAILED and failed.finished_at is not None
    assert failed.error.startswith("RuntimeError: disk on fire")
    assert len(failed.error) == schedule.ERROR_MAX_CHARS
    assert "test_broken failed" in caplog.text
    (quiet,) = runs("test_quiet")
    assert (quiet.outcome, quiet.items) == (RunOutcome.OK, None)
    outcomes = dict(db.session.execute(sa.select(ScheduleRun.name, ScheduleRun.last_outcome)).all())
    assert outcomes == {
        "test_count": RunOutcome.OK,
        "test_broken": RunOutcome.FAILED,
        "test_quiet": RunOutcome.OK,
    }


def test_a_timer_keeps_running_its_tasks_when_one_fails(fresh_app, only, monkeypatch):
    """The real timer thread: a task that fails every time neither stops it nor the others."""
    monkeypatch.setitem(fresh_app.config, "JOB_SWEEP_S", 0.2)
    done = threading.Event()
    calls: list[int] = []

    def broken() -> None:
        raise RuntimeError("always")

    def counting() -> int:
        calls.append(1)
        if len(calls) >= 3:
            done.set()
        return 1

    schedule.register("test_always_broken", "JOB_SWEEP_S", broken)
    schedule.register("test_counting", "JOB_SWEEP_S", counting)
    timer = schedule.Timer(fresh_app)
    timer.start()
    try:
        assert done.wait(60), "the timer stopped running tasks"
    finally:
        timer.stopped.set()
        timer.join(timeout=30)
    with fresh_app.app_context():
        failed = runs("test_always_broken")
        assert len(failed) >= 3 and {run.outcome for run in failed} == {RunOutcome.FAILED}
        # It said it was alive while it ran and took its row away when it stopped.
        assert db.session.scalars(sa.select(ScheduleTimer)).all() == []


def test_local_tasks_are_recorded_only_when_they_handle_something_or_fail(ctx, only):
    found: list[list[str]] = [[], ["/tmp/veriskill-jobs/host-1"]]
    schedule.register("test_tidy", "JOB_SWEEP_S", lambda: found.pop(0), local=True)
    turns = schedule._LocalTurns()
    assert schedule.run_due(by="p", local_turns=turns) == ["test_tidy"]
    assert runs("test_tidy") == []  # tidied nothing: no write
    turns.last.clear()
    assert schedule.run_due(by="p", local_turns=turns, shared=False) == ["test_tidy"]
    (run,) = runs("test_tidy")
    assert (run.outcome, run.items) == (RunOutcome.OK, 1)
    assert db.session.get(ScheduleRun, "test_tidy") is None  # local: no shared turn


def test_without_shared_turns_a_worker_runs_only_its_local_tasks(ctx, only):
    ran: list[str] = []
    schedule.register("test_shared", "JOB_SWEEP_S", lambda: ran.append("shared"))
    schedule.register("test_local", "JOB_SWEEP_S", lambda: ran.append("local"), local=True)
    assert schedule.run_due(by="w", local_turns=schedule._LocalTurns(), shared=False) == [
        "test_local"
    ]
    assert ran == ["local"] and db.session.get(ScheduleRun, "test_shared") is None


def test_the_history_keeps_the_newest_runs_of_each_task(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "SCHEDULE_HISTORY_RUNS", 3)
    now = utcnow()
    for name, count in (("test_a", 5), ("test_b", 2)):
        for number in range(count):
            db.session.add(
                TaskRun(
                    name=name,
                    trigger="timer",
                    run_by="h:1",
                    started_at=now - timedelta(minutes=10 - number),
                    outcome=RunOutcome.OK,
                    items=number,
                )
            )
    db.session.add_all(
        [
            ScheduleTimer(id="h:2", mode="worker", started_at=now, seen_at=now),
            ScheduleTimer(id="h:3", mode="worker", started_at=now, seen_at=now - timedelta(days=2)),
        ]
    )
    db.session.commit()
    assert schedule.prune_history() == 2
    assert [run.items for run in runs("test_a")] == [2, 3, 4]
    assert [run.items for run in runs("test_b")] == [0, 1]
    assert db.session.scalars(sa.select(ScheduleTimer.id)).all() == ["h:2"]


def test_expiry_deletes_in_bounded_batches(ctx, monkeypatch):
    monkeypatch.setattr(schedule, "BATCH_ROWS", 2)
    monkeypatch.setattr(schedule, "MAX_BATCHES", 2)
    for number in range(5):
        db.session.add(sms_code(f"{number:064d}", expires_in=timedelta(minutes=-1)))
    db.session.commit()
    assert schedule.run_now("expire_sms_codes", by="op:1") is RunOutcome.OK
    assert count(SmsCode) == 1  # two batches of two; the last goes at the next turn
    assert runs("expire_sms_codes")[-1].items == 4
    schedule.run_now("expire_sms_codes", by="op:1")
    assert count(SmsCode) == 0


# --------------------------------------------------------------------------- the CLI


def test_schedule_list_shows_each_task_its_rule_last_run_and_next_due(runner, fresh_app):
    with fresh_app.app_context():
        names = sorted(schedule.TASKS)
    assert {"sweep_jobs", "evidence_purge", "expire_sms_codes", "audit_anchor"} <= set(names)
    ran = runner.invoke(args=["schedule", "run-now", "expire_sms_codes"])
    assert ran.exit_code == 0, ran.output
    assert ran.output.strip() == "expire_sms_codes: ok, 0 handled"
    result = runner.invoke(args=["schedule", "list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:-1]}
    assert sorted(lines) == names
    assert "every 15s (JOB_SWEEP_S)" in lines["sweep_jobs"]
    assert "daily at 03:00 (EVIDENCE_PURGE_AT)" in lines["evidence_purge"]
    assert "never" in lines["evidence_purge"] and lines["evidence_purge"].endswith("due now")
    assert "in every process" in lines["remove_dead_scratch"]
    assert "ok, 0 handled" in lines["expire_sms_codes"]
    assert "due now" not in lines["expire_sms_codes"]  # ran just now: due in an hour
    assert result.output.splitlines()[-1].startswith("timers: none alive")
    listed = json.loads(runner.invoke(args=["schedule", "list", "--json"]).output)
    by_name = {task["name"]: task for task in listed["tasks"]}
    assert by_name["expire_sms_codes"]["rule"] == "every 1h"
    assert by_name["expire_sms_codes"]["last_run_by"].endswith(f":{os.getpid()}")
    assert listed["timers"] == []
    history = runner.invoke(args=["schedule", "history", "expire_sms_codes"])
    assert "\texpire_sms_codes\tok\toperator " in history.output


def test_run_now_records_the_operators_run_and_fails_with_the_task(
    runner, fresh_app, only, monkeypatch
):
    def broken() -> None:
        raise ValueError("no such bucket")

    schedule.register("test_broken", "JOB_SWEEP_S", broken)
    result = runner.invoke(args=["schedule", "run-now", "test_broken"])
    assert result.exit_code == 1
    assert "test_broken: failed: ValueError: no such bucket" in result.output
    with fresh_app.app_context():
        (run,) = runs("test_broken")
        assert (run.trigger, run.outcome) == ("operator", RunOutcome.FAILED)
        turn = db.session.get(ScheduleRun, "test_broken")
        assert turn.last_run_at == run.started_at  # it was this interval's turn
    unknown = runner.invoke(args=["schedule", "run-now", "nothing_here"])
    assert unknown.exit_code == 2 and "the tasks are test_broken" in unknown.output


# --------------------------------------------------------------------------- the tasks


def count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def stored_snapshot(app, user_id: int, *, expired: bool) -> tuple[int, str]:
    with app.test_request_context():
        evidence = verification.store_evidence(
            db.session.get(User, user_id),
            photo("obama_1.jpg"),
            EvidenceKind.SNAPSHOT,
            dhash=None,
            result="match",
        )
        evidence.purge_after = utcnow() + timedelta(days=-1 if expired else 30)
        db.session.commit()
        return evidence.id, evidence.key


def test_the_scheduled_purge_is_the_purge_of_flask_evidence_purge(runner, fresh_app):
    assert schedule.TASKS["evidence_purge"].fn is verification_cli.scheduled_purge
    trainee = make_trainee(fresh_app)
    old = [stored_snapshot(fresh_app, trainee, expired=True) for _ in range(2)]
    young = stored_snapshot(fresh_app, trainee, expired=False)
    result = runner.invoke(args=["schedule", "run-now", "evidence_purge"])
    assert result.exit_code == 0, result.output
    assert "evidence_purge: ok, 2 handled" in result.output
    with fresh_app.app_context():
        for evidence_id, key in old:
            row = db.session.get(Evidence, evidence_id)
            assert row.key is None and row.purged_at is not None
            assert not storage().exists(key)
        assert db.session.get(Evidence, young[0]).purged_at is None
        assert storage().exists(young[1])
        (purge_run,) = db.session.scalars(sa.select(PurgeRun))
        assert purge_run.purged == 2
        entry = db.session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "evidence.purge")
        )
        assert (entry.actor_label, entry.subject_id) == ("system", str(purge_run.id))
    by_hand = runner.invoke(args=["evidence", "purge"])  # the same purge: nothing left
    assert by_hand.exit_code == 0 and "purged 0 image(s)" in by_hand.output
    with fresh_app.app_context():
        assert count(PurgeRun) == 2


def sms_code(digest: str, *, expires_in: timedelta, used: bool = False) -> SmsCode:
    return SmsCode(
        purpose=CodePurpose.REGISTER,
        phone_digest=digest,
        code_digest=digest,
        expires_at=utcnow() + expires_in,
        used_at=utcnow() if used else None,
    )


def test_expired_sms_codes_are_deleted_and_live_ones_kept(ctx):
    db.session.add_all(
        [
            sms_code("a" * 64, expires_in=timedelta(minutes=-1)),
            sms_code("b" * 64, expires_in=timedelta(days=-3), used=True),
            sms_code("c" * 64, expires_in=timedelta(minutes=4)),
            sms_code("d" * 64, expires_in=timedelta(minutes=4), used=True),
        ]
    )
    db.session.commit()
    assert schedule.run_now("expire_sms_codes", by="op:1") is RunOutcome.OK
    kept = db.session.scalars(sa.select(SmsCode.phone_digest).order_by(SmsCode.id)).all()
    assert kept == ["c" * 64, "d" * 64]
    assert runs("expire_sms_codes")[-1].items == 2


def test_tokens_are_deleted_a_month_after_they_ended(ctx):
    user = db.session.get(User, make_trainee(ctx))
    month = identity.ENDED_TOKEN_KEPT
    rows = {}
    for label, expires_in, revoked_ago in (
        ("live", timedelta(hours=1), None),
        ("expired_yesterday", timedelta(days=-1), None),
        ("expired_long_ago", -month - timedelta(days=1), None),
        ("revoked_yesterday", timedelta(days=300), timedelta(days=1)),
        ("revoked_long_ago", timedelta(days=300), month + timedelta(days=1)),
    ):
        _, row = identity.issue_token(user, ttl_s=3600, label=label)
        row.expires_at = utcnow() + expires_in
        row.revoked_at = utcnow() - revoked_ago if revoked_ago else None
        rows[label] = row.id
    db.session.commit()
    assert schedule.run_now("expire_api_tokens", by="op:1") is RunOutcome.OK
    kept = set(db.session.scalars(sa.select(ApiToken.label)))
    assert kept == {"live", "expired_yesterday", "revoked_yesterday"}
    assert runs("expire_api_tokens")[-1].items == 2


def test_uploads_abandoned_for_a_week_are_dropped_and_recent_ones_kept(client, fresh_app):
    token = make_platform(fresh_app)
    course = create_course(client, token)
    data = CLIP.read_bytes()
    lessons = []
    for title in ("第一课", "第二课"):
        lesson_id = add_lesson(client, token, course, title)
        assert put_chunk(client, token, lesson_id, data[:4096], 0, len(data)).status_code == 200
        lessons.append(lesson_id)
    abandoned, recent = lessons
    with fresh_app.app_context():
        keys = {
            lesson_id: db.session.scalars(
                sa.select(UploadPart.key).where(UploadPart.lesson_id == lesson_id)
            ).all()
            for lesson_id in lessons
        }
        week = timedelta(seconds=fresh_app.config["UPLOAD_ABANDONED_S"])
        db.session.execute(
            sa.update(Lesson)
            .where(Lesson.id == abandoned)
            .values(updated_at=utcnow() - week - timedelta(minutes=1))
        )
        db.session.commit()
        assert schedule.run_now("drop_abandoned_uploads", by="op:1") is RunOutcome.OK
        assert runs("drop_abandoned_uploads")[-1].items == 1
        gone = db.session.get(Lesson, abandoned)
        assert (gone.status, gone.upload_received, gone.upload_total) == (
            LessonStatus.AWAITING_UPLOAD,
            0,
            None,
        )
        assert not any(storage().exists(key) for key in keys[abandoned])
        kept = db.session.get(Lesson, recent)
        assert kept.status is LessonStatus.UPLOADING and kept.upload_received == 4096
        assert keys[recent] and all(storage().exists(key) for key in keys[recent])
    resumed = put_chunk(client, token, abandoned, data[4096:8192], 4096, len(data))
    assert resumed.status_code == 409
    assert resumed.get_json()["error"]["expected_offset"] == 0  # starts again from byte 0
