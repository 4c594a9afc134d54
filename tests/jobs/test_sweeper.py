"""The outbox's sweeper and the schedule that runs it, in this process on both databases.

Worker processes, a broker that is down and killed pool children are in test_faults.py.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import utcnow
from app.extensions import db
from app.jobs import schedule, service
from app.jobs.models import Job, JobStatus, ScheduleRun

CALLS: list[int] = []
GIVEN_UP: list[tuple[int, str]] = []


@service.handler(
    "test_sweep", on_give_up=lambda subject, code, _msg: GIVEN_UP.append((subject, code))
)
def sweep_me(subject_id: int, report: service.Progress) -> None:
    CALLS.append(subject_id)


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    GIVEN_UP.clear()


def fresh(job_id: int) -> Job:
    db.session.expire_all()
    return db.session.get(Job, job_id)


def dead_pid() -> int:
    """The pid of a process of ours that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_a_failed_dispatch_does_not_raise_and_the_sweeper_wakes_a_worker_later(ctx):
    class DeadBroker:
        def dispatch(self, job_id: int) -> None:
            raise ConnectionError("broker down")

    backend = ctx.extensions["veriskill.jobs"]
    ctx.extensions["veriskill.jobs"] = DeadBroker()
    try:
        job_id = service.enqueue("test_sweep", 1).id
        db.session.commit()
        assert service.dispatch(job_id) is False  # the caller's answer does not depend on it
        assert service.dispatch_waiting() == []  # within the grace period
    finally:
        ctx.extensions["veriskill.jobs"] = backend
    assert fresh(job_id).dispatched_at is None
    db.session.execute(
        sa.update(Job).where(Job.id == job_id).values(created_at=utcnow() - timedelta(minutes=5))
    )
    db.session.commit()
    assert service.dispatch_waiting() == [job_id]
    woken = fresh(job_id).dispatched_at
    assert woken is not None and woken > utcnow() - timedelta(minutes=1)
    assert service.dispatch_waiting() == []  # woken just now: not again before the grace
    assert service.run_pending() == 1
    assert fresh(job_id).status is JobStatus.DONE


def test_a_job_whose_worker_died_at_every_attempt_fails_as_worker_lost(ctx):
    host = socket.gethostname()
    lost = Job(
        kind="test_sweep",
        subject_id=2,
        status=JobStatus.RUNNING,
        attempts=ctx.config["JOB_MAX_ATTEMPTS"],
        locked_by=f"{host}:{dead_pid()}",
        heartbeat_at=utcnow(),
    )
    again = Job(
        kind="test_sweep",
        subject_id=3,
        status=JobStatus.RUNNING,
        attempts=1,
        locked_by="elsewhere:7",
        heartbeat_at=utcnow() - timedelta(seconds=ctx.config["JOB_STALE_S"] + 1),
    )
    db.session.add_all([lost, again])
    db.session.commit()
    lost_id, again_id = lost.id, again.id
    service.sweep()
    failed = fresh(lost_id)
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "worker_lost")
    assert failed.finished_at is not None
    assert GIVEN_UP == [(2, "worker_lost")]
    retried = fresh(again_id)
    assert retried.status is JobStatus.QUEUED and retried.locked_by is None
    assert retried.dispatched_at is not None  # taken back and woken in the same sweep
    assert service.run_pending() == 1
    assert fresh(again_id).status is JobStatus.DONE
    assert CALLS == [3]


def test_a_run_that_was_taken_back_cannot_overwrite_the_next_runs_outcome(ctx):
    job_id = service.enqueue("test_sweep", 4).id
    db.session.commit()
    assert service.claim(job_id)
    first_attempt = fresh(job_id).attempts
    db.session.execute(
        sa.update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=5))
    )
    db.session.commit()
    assert service.requeue_stale() == [job_id]
    assert service.claim(job_id)  # the next run
    db.session.commit()
    assert service._finish(job_id, first_attempt, JobStatus.FAILED, "x", "late") is False
    assert fresh(job_id).status is JobStatus.RUNNING
    assert service._finish(job_id, first_attempt + 1, JobStatus.DONE, None, None) is True
    assert fresh(job_id).status is JobStatus.DONE


def test_a_shared_task_runs_once_per_interval_however_many_workers_ask(ctx, monkeypatch):
    runs: list[str] = []
    monkeypatch.setattr(schedule, "TASKS", {})
    schedule.register("test_tick", "JOB_SWEEP_S", lambda: runs.append("tick"))
    monkeypatch.setitem(ctx.config, "JOB_SWEEP_S", 3600.0)
    barrier = threading.Barrier(4)
    ran: list[list[str]] = []

    def worker(number: int) -> None:
        with ctx.app_context():
            barrier.wait()
            ran.append(schedule.run_due(by=f"worker-{number}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert runs == ["tick"]
    assert sorted(len(names) for names in ran) == [0, 0, 0, 1]
    assert schedule.run_due(by="late") == []  # within the interval
    db.session.execute(
        sa.update(ScheduleRun).values(last_run_at=utcnow() - timedelta(seconds=3601))
    )
    db.session.commit()
    assert schedule.run_due(by="next") == ["test_tick"] and runs == ["tick", "tick"]


def test_a_task_that_fails_is_logged_and_tried_at_its_next_turn(ctx, monkeypatch, caplog):
    monkeypatch.setattr(schedule, "TASKS", {})

    def broken() -> None:
        raise RuntimeError("boom")

    schedule.register("test_broken", "JOB_SWEEP_S", broken)
    assert schedule.run_due(by="one") == ["test_broken"]
    assert "test_broken failed" in caplog.text


def test_the_sweeper_and_late_answers_are_registered_for_every_worker():
    import app.study.jobs  # noqa: F401  (registers at import, as every worker imports it)

    assert {"sweep_jobs", "remove_dead_scratch", "hand_back_late_answers"} <= set(schedule.TASKS)
    assert schedule.TASKS["remove_dead_scratch"].local is True


def test_scratch_folders_of_stopped_processes_are_removed(ctx, monkeypatch, tmp_path):
    monkeypatch.setattr(service, "_system_tmp", str(tmp_path))
    monkeypatch.setitem(ctx.config, "JOB_SCRATCH_MAX_AGE_S", 0)
    host = socket.gethostname()
    root = Path(service.scratch_root())
    gone = root / f"{host}-{dead_pid()}"
    alive = root / f"{host}-{os.getpid()}"
    elsewhere = root / f"another-host-{dead_pid()}"
    for folder in (gone, alive, elsewhere):
        (folder / "veriskill-transcode-x").mkdir(parents=True)
        (folder / "veriskill-transcode-x" / "source").write_bytes(b"\0" * 1024)
    assert service.remove_dead_scratch() == [str(gone)]
    assert not gone.exists() and alive.exists() and elsewhere.exists()
    monkeypatch.setitem(ctx.config, "JOB_SCRATCH_MAX_AGE_S", 3600)
    recent = root / f"{host}-{dead_pid()}"
    recent.mkdir()
    assert service.remove_dead_scratch() == []  # younger than the limit: left for now


def test_unfinished_writes_of_a_killed_process_are_removed_from_the_local_store(
    ctx, monkeypatch, tmp_path
):
    """A process killed mid-write leaves its temporary file in its own folder of the store;
    the sweeper removes that folder once the process is gone, never a live one's."""
    monkeypatch.setattr(service, "_system_tmp", str(tmp_path))
    monkeypatch.setitem(ctx.config, "JOB_SCRATCH_MAX_AGE_S", 0)
    store = ctx.extensions["veriskill.storage"]
    code = (
        "import os, io, sys\n"
        "from media_pipeline.storage import LocalStorage\n"
        "class Endless(io.RawIOBase):\n"
        "    def readable(self): return True\n"
        "    def readinto(self, b):\n"
        "        sys.stdout.write('writing\\n'); sys.stdout.flush()\n"
        "        os.kill(os.getpid(), 9)\n"
        f"LocalStorage({str(store.root)!r})"
        ".put_stream('videos/x/source', Endless(), content_type='video/mp4')\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL and "writing" in killed.stdout
    leftovers = list(store.temp_root().glob("*/.tmp-*.part"))
    assert len(leftovers) == 1  # what a killed writer leaves behind
    store.put_stream(
        "videos/y/source", io.BytesIO(b"mine"), content_type="video/mp4"
    )  # a live process's folder
    removed = service.remove_dead_scratch()
    assert removed == [str(leftovers[0].parent)]
    assert not leftovers[0].exists() and store.temp_dir().exists()
    assert store.list("") == ["videos/y/source"]


def test_a_worker_process_keeps_its_temporary_files_in_its_scratch_folder(tmp_path):
    code = (
        f"import tempfile, app.jobs.service as s; s._system_tmp = {str(tmp_path)!r}; "
        "folder = s.use_scratch_dir(); work = tempfile.mkdtemp(prefix='veriskill-transcode-'); "
        "print(folder); print(work)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    folder, work = Path(out[-2]), Path(out[-1])
    pid = int(folder.name.rsplit("-", 1)[1])
    assert folder == tmp_path / "veriskill-jobs" / f"{socket.gethostname()}-{pid}"
    assert pid != os.getpid() and work.parent == folder
    assert tempfile.gettempdir() != str(folder)  # this process is untouched


def test_the_embedded_thread_backend_runs_the_sweeper_on_its_own_timer(fresh_app):
    """`make run`'s backend: a job whose worker died after this one started is taken back
    and run, with no restart and no command."""
    import time

    from tests.conftest import make_app

    web = make_app(
        fresh_app.config["SQLALCHEMY_DATABASE_URI"],
        JOB_BACKEND="thread",
        JOB_POLL_S=0.2,
        JOB_SWEEP_S=0.5,
    )
    backend = web.extensions["veriskill.jobs"]
    try:
        backend.start()
        time.sleep(0.5)  # the worker's start-up recovery is over
        with web.app_context():
            orphan = Job(
                kind="test_sweep",
                subject_id=5,
                status=JobStatus.RUNNING,
                attempts=1,
                locked_by=f"{socket.gethostname()}:{dead_pid()}",
                heartbeat_at=utcnow(),
            )
            db.session.add(orphan)
            db.session.commit()
            deadline = time.monotonic() + 20
            while fresh(orphan.id).status is not JobStatus.DONE and time.monotonic() < deadline:
                time.sleep(0.2)
            assert (fresh(orphan.id).status, fresh(orphan.id).attempts) == (JobStatus.DONE, 2)
            db.session.remove()
        assert CALLS == [5]
    finally:
        backend.worker.stopped.set()
        backend.worker.wake.set()
        backend.thread.join(timeout=10)
        with web.app_context():
            db.engine.dispose()
