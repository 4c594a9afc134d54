"""Faults injected into real workers: every job ends `done` or `failed`, none stays behind.

Real Redis, real Celery and polling worker processes, real PostgreSQL and real transcodes:
the broker down when a job is dispatched, a Celery pool child killed while its worker lives,
one of two workers killed mid-job, and the database's connections terminated mid-job. Each
wait is bounded; the workers' schedule runs the sweeper every second here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from app.courses.models import Lesson
from app.extensions import db
from app.jobs.models import Job, JobStatus
from tests.conftest import (
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    make_app,
    make_platform,
)
from tests.courses.helpers import add_lesson, create_course, upload_whole
from tests.jobs.test_workers import CELERY_WORKER, empty_broker, kill_group, start, worker_env
from tests.made_once import MADE_ONCE

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SHORT_CLIP = Path(__file__).resolve().parents[1] / "data" / "media" / "short_hamilton_clip.mp4"
POLLING_WORKER = [sys.executable, "-m", "flask", "jobs", "work"]
# A Celery worker whose tasks run in a forked pool child, as production runs them.
PREFORK_WORKER = [
    *[arg for arg in CELERY_WORKER if arg not in ("--pool", "solo")],
    "--pool",
    "prefork",
    "--concurrency",
    "1",
]
FINISHED = {JobStatus.DONE, JobStatus.FAILED}


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> bytes:
    """Long enough at 720p that a worker can be stopped while ffmpeg is busy."""
    path = tmp_path_factory.mktemp("media") / "long.mp4"
    # Made once per process (tests/made_once.py): both databases' runs use the same clip.
    MADE_ONCE.make_test_pattern(path, seconds=30, title="故障恢复", width=1280, height=720)
    return path.read_bytes()


@pytest.fixture
def pg_app(database_url, fresh_app):
    if database_url.startswith("sqlite"):
        pytest.skip("worker faults run once, on PostgreSQL")
    return fresh_app


@pytest.fixture
def broker() -> str:
    return empty_broker(TEST_REDIS_URL)


def dead_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fault_env(app, tmp_path: Path, **extra: str) -> dict[str, str]:
    return worker_env(
        app,
        JOB_SWEEP_S="1",
        JOB_DISPATCH_GRACE_S="2",
        JOB_STALE_S="5",
        JOB_SCRATCH_MAX_AGE_S="0",
        TMPDIR=str(tmp_path),  # the workers' scratch folders go under it
        **extra,
    )


def job_state(app, lesson_id: int) -> tuple[Job, str]:
    with app.app_context():
        job = db.session.scalars(sa.select(Job).where(Job.subject_id == lesson_id)).one()
        lesson = db.session.get(Lesson, lesson_id)
        db.session.expunge(job)
        status = lesson.status.value
        db.session.remove()
    return job, status


def wait_job(app, lesson_id: int, predicate, timeout_s: float, log: Path) -> tuple[Job, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        job, lesson = job_state(app, lesson_id)
        if predicate(job, lesson):
            return job, lesson
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out: job {job.status.value} attempt {job.attempts} "
                f"{job.progress:.0f}% {job.error_code}, lesson {lesson}; "
                f"log:\n{log.read_text()[-4000:]}"
            )
        time.sleep(0.3)


def upload_lesson(app, data: bytes) -> int:
    client = app.test_client()
    token = make_platform(app)
    lesson_id = add_lesson(client, token, create_course(client, token))
    upload_whole(client, token, lesson_id, data)
    return lesson_id


def running_mid_transcode(job: Job, _lesson: str) -> bool:
    return job.status is JobStatus.RUNNING and job.progress >= 15


def ends_ready(job: Job, lesson: str) -> bool:
    return job.status in FINISHED


def assert_done_and_ready(job: Job, lesson: str, *, attempts: int) -> None:
    assert (job.status, job.error_code, lesson) == (JobStatus.DONE, None, "ready")
    assert job.attempts == attempts


def descendants(pid: int) -> list[int]:
    """The processes started by pid (ffmpeg under a pool child), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def owner_pid(job: Job) -> int:
    host, _, pid = (job.locked_by or "").rpartition(":")
    assert host == socket.gethostname(), job.locked_by
    return int(pid)


def scratch_of(tmp_path: Path, pid: int) -> Path:
    return tmp_path / "veriskill-jobs" / f"{socket.gethostname()}-{pid}"


def test_a_job_dispatched_while_redis_is_down_is_sent_by_the_sweeper(pg_app, broker, tmp_path):
    # The web app's broker is down: the upload is still accepted and its job kept queued.
    web = make_app(
        pg_app.config["SQLALCHEMY_DATABASE_URI"],
        JOB_BACKEND="celery",
        REDIS_URL=f"redis://127.0.0.1:{dead_port()}/0",
    )
    log = tmp_path / "worker.log"
    try:
        lesson_id = upload_lesson(web, SHORT_CLIP.read_bytes())
        job, lesson = job_state(web, lesson_id)
        assert (job.status, job.dispatched_at, lesson) == (JobStatus.QUEUED, None, "queued")
        # Redis is back: a worker's schedule finds the job in its row and sends it.
        worker = start(
            CELERY_WORKER, fault_env(pg_app, tmp_path, JOB_BACKEND="celery", REDIS_URL=broker), log
        )
        try:
            job, lesson = wait_job(web, lesson_id, ends_ready, 120, log)
        finally:
            kill_group(worker)
        assert_done_and_ready(job, lesson, attempts=1)
        assert job.dispatched_at is not None
    finally:
        with web.app_context():
            db.engine.dispose()


def test_a_killed_pool_child_s_job_is_taken_back_while_its_worker_lives(
    pg_app, broker, long_video, tmp_path
):
    web = make_app(pg_app.config["SQLALCHEMY_DATABASE_URI"], JOB_BACKEND="celery", REDIS_URL=broker)
    log = tmp_path / "worker.log"
    worker = start(
        PREFORK_WORKER, fault_env(pg_app, tmp_path, JOB_BACKEND="celery", REDIS_URL=broker), log
    )
    try:
        lesson_id = upload_lesson(web, long_video)
        job, _ = wait_job(web, lesson_id, running_mid_transcode, 180, log)
        child = owner_pid(job)
        assert child != worker.pid  # a pool child, not the worker
        assert scratch_of(tmp_path, child).is_dir()  # its transcode works in its scratch
        for pid in [child, *descendants(child)]:  # as the kernel's OOM killer would
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        job, lesson = wait_job(web, lesson_id, ends_ready, 240, log)
        assert worker.poll() is None  # the worker itself lived throughout
        assert_done_and_ready(job, lesson, attempts=2)
        deadline = time.monotonic() + 10
        while scratch_of(tmp_path, child).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not scratch_of(tmp_path, child).exists()  # the dead child's files are gone
    finally:
        kill_group(worker)
        with web.app_context():
            db.engine.dispose()


def test_a_worker_killed_mid_job_is_replaced_by_one_already_running(pg_app, long_video, tmp_path):
    env = fault_env(pg_app, tmp_path, JOB_BACKEND="external")
    log = tmp_path / "workers.log"
    workers = [start(POLLING_WORKER, env, log) for _ in range(2)]
    try:
        lesson_id = upload_lesson(pg_app, long_video)
        job, _ = wait_job(pg_app, lesson_id, running_mid_transcode, 180, log)
        owner = owner_pid(job)
        (killed,) = [w for w in workers if w.pid == owner]
        kill_group(killed)  # with its ffmpeg, as a power cut would
        job, lesson = wait_job(pg_app, lesson_id, ends_ready, 240, log)
        assert_done_and_ready(job, lesson, attempts=2)
        assert job.locked_by != f"{socket.gethostname()}:{owner}"
        deadline = time.monotonic() + 10
        while scratch_of(tmp_path, owner).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not scratch_of(tmp_path, owner).exists()
    finally:
        for worker in workers:
            kill_group(worker)


def test_database_connections_terminated_mid_job_still_end_the_job(pg_app, long_video, tmp_path):
    env = fault_env(pg_app, tmp_path, JOB_BACKEND="external")
    log = tmp_path / "worker.log"
    worker = start(POLLING_WORKER, env, log)
    database = TEST_DATABASE_URL.rsplit("/", 1)[1]
    terminated = 0
    try:
        lesson_id = upload_lesson(pg_app, long_video)
        wait_job(pg_app, lesson_id, running_mid_transcode, 180, log)
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as admin:
            for _ in range(2):  # twice, a second apart: the heartbeat's and the job's
                terminated += sum(
                    1
                    for (done,) in admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (database,),
                    )
                    if done
                )
                time.sleep(1)
        assert terminated >= 1
        job, lesson = wait_job(pg_app, lesson_id, ends_ready, 240, log)
        assert_done_and_ready(job, lesson, attempts=job.attempts)
        assert job.attempts in (1, 2)
    finally:
        kill_group(worker)
    with pg_app.app_context():
        left = db.session.scalar(
            sa.select(sa.func.count()).select_from(Job).where(Job.status.not_in(FINISHED))
        )
        db.session.remove()
    assert left == 0
