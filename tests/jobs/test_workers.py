"""Real worker processes: a transcode cut off by a crash is picked up again and ends ready, once.

A worker is killed with its whole process group (ffmpeg included), as a power cut would,
in the middle of a transcode; a new worker then recovers the job. The polling worker runs on
SQLite and the Celery worker (over the Redis on 127.0.0.1) on PostgreSQL, each once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from app.courses.models import Lesson
from app.extensions import db
from app.jobs.models import Job
from tests.conftest import TEST_REDIS_URL, bearer, make_app, make_platform, service_missing
from tests.courses.helpers import add_lesson, create_course, upload_whole
from tests.jobs.waiting import job_done
from tests.made_once import MADE_ONCE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CELERY_REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/14"


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> bytes:
    """Long enough at 720p that a worker can be killed while ffmpeg is busy."""
    path = tmp_path_factory.mktemp("media") / "long.mp4"
    # Made once per process (tests/made_once.py): both databases' runs use the same clip.
    MADE_ONCE.make_test_pattern(path, seconds=40, title="断电恢复", width=1280, height=720)
    return path.read_bytes()


def celery_worker_command(python: str | os.PathLike[str] = sys.executable) -> list[str]:
    """One Celery worker process, as production runs them (one task at a time, no chatter)."""
    return [
        str(python),
        "-m",
        "celery",
        "-A",
        "app.jobs.celery_worker",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]


CELERY_WORKER = celery_worker_command()


def empty_broker(url: str) -> str:
    """The Redis database at url, emptied for a Celery test (skipped, or failed in CI, when
    Redis does not answer)."""
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as error:
        service_missing(f"Redis at {url} is not reachable: {error}")
    finally:
        client.close()
    return url


def worker_env(app, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VERISKILL_ENV="development",
        VERISKILL_INSTANCE=app.config["STORAGE_ROOT"] + "-instance",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY=app.config["SECRET_KEY"],
        DATA_KEY=app.config["DATA_KEY"],
        STORAGE_ROOT=app.config["STORAGE_ROOT"],
        DEMO_CONTENT="off",
        JOB_POLL_S="0.5",
        JOB_HEARTBEAT_S="1",
        JOB_STALE_S="5",
        TRANSCODE_PRESET="ultrafast",
        FLASK_APP="wsgi",
    )
    env.update(extra)
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    # A session of its own, so killing the group takes ffmpeg down with the worker.
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def wait_for(app, lesson_id: int, predicate, timeout_s: float, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with app.app_context():
            lesson = db.session.get(Lesson, lesson_id)
            job = db.session.scalar(sa.select(Job).where(Job.subject_id == lesson_id))
            state = (lesson.status.value, lesson.progress, job.progress if job else 0)
            db.session.remove()
        if predicate(*state):
            return state
        time.sleep(0.3)
    pytest.fail(f"timed out in state {state}; worker log:\n{log.read_text()[-3000:]}")


def assert_ready_once(app, lesson_id: int) -> None:
    with app.app_context():
        jobs = db.session.scalars(sa.select(Job).where(Job.subject_id == lesson_id)).all()
        assert len(jobs) == 1
        assert jobs[0].status.value == "done" and jobs[0].attempts == 2
        lesson = db.session.get(Lesson, lesson_id)
        prefix = Path(app.config["STORAGE_ROOT"]) / lesson.hls_prefix
        masters = list(prefix.rglob("master.m3u8"))
        assert len(masters) == 1
        for playlist in prefix.glob("*/index.m3u8"):
            listed = [
                line
                for line in playlist.read_text().splitlines()
                if line and not line.startswith("#")
            ]
            on_disk = sorted(p.name for p in playlist.parent.glob("*.ts"))
            assert sorted(listed) == on_disk  # no segments left over from the killed run
        db.session.remove()


def crash_and_recover(app, client, command, env, long_video, tmp_path):
    log = tmp_path / "worker.log"
    token = make_platform(app)
    lesson_id = add_lesson(client, token, create_course(client, token))
    worker = start(command, env, log)
    try:
        upload_whole(client, token, lesson_id, long_video)
        wait_for(
            app, lesson_id, lambda status, _l, job: status == "processing" and job >= 20, 120, log
        )
    finally:
        kill_group(worker)
    status, _, _ = wait_for(app, lesson_id, lambda *_: True, 1, log)
    assert status == "processing"  # cut off mid-transcode
    worker = start(command, env, log)
    try:
        wait_for(app, lesson_id, lambda status, *_: status == "ready", 180, log)
        # The lesson is ready when the pipeline commits it; the job's own outcome is written
        # just after, by the worker: stop it only once that is in.
        job_done(app, Job.subject_id == lesson_id)
    finally:
        kill_group(worker)
    assert_ready_once(app, lesson_id)
    body = client.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)).get_json()
    assert [r["height"] for r in body["renditions"]] == [360, 540, 720]


def test_polling_worker_killed_mid_transcode_recovers(
    database_url, fresh_app, client, long_video, tmp_path
):
    if not database_url.startswith("sqlite"):
        pytest.skip("the polling worker runs once, on SQLite; Celery covers PostgreSQL")
    command = [sys.executable, "-m", "flask", "jobs", "work"]
    crash_and_recover(
        fresh_app,
        client,
        command,
        worker_env(fresh_app, JOB_BACKEND="external"),
        long_video,
        tmp_path,
    )


def test_celery_worker_killed_mid_transcode_recovers(database_url, fresh_app, long_video, tmp_path):
    if database_url.startswith("sqlite"):
        pytest.skip("the Celery worker runs once, on PostgreSQL; SQLite has the polling worker")
    empty_broker(CELERY_REDIS_URL)
    web = make_app(
        fresh_app.config["SQLALCHEMY_DATABASE_URI"],
        JOB_BACKEND="celery",
        REDIS_URL=CELERY_REDIS_URL,
    )
    env = worker_env(fresh_app, JOB_BACKEND="celery", REDIS_URL=CELERY_REDIS_URL)
    try:
        crash_and_recover(web, web.test_client(), CELERY_WORKER, env, long_video, tmp_path)
    finally:
        with web.app_context():
            db.engine.dispose()
