"""A production install from `requirements.txt` alone runs the worker and a transcode.

A fresh virtualenv gets `pip install -r requirements.txt` and nothing else (no development
packages, which once hid that kombu's Redis transport needs `packaging`); a real Celery worker
started from it, with the production profile, PostgreSQL and Redis, transcodes a real video
uploaded through the API. Then, without `packaging`, the same worker must fail at start: the
proof that this test sees what a missing runtime requirement does. pip's cache keeps the
install to a minute or two after the first run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.courses.models import Lesson
from app.extensions import db
from app.jobs.models import Job, JobStatus
from tests.conftest import TEST_REDIS_URL, make_app, make_platform
from tests.courses.helpers import add_lesson, create_course, upload_whole
from tests.jobs.test_workers import celery_worker_command, empty_broker, start
from tests.verification.test_faces_under_load import gunicorn

# The install and the worker run once, on PostgreSQL (the virtualenv takes a minute or two).
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.database("postgresql")]
ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "media" / "short_hamilton_clip.mp4"
INSTALL_TIMEOUT_S = 600
TRANSCODE_TIMEOUT_S = 180


def production_env(app, venv: Path, tmp_path: Path) -> dict[str, str]:
    """What a production worker has: the production profile, its secrets and services, and
    the virtualenv's programs first on PATH. No variable of this test process leaks in."""
    return {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path),
        "VERISKILL_ENV": "production",
        "VERISKILL_INSTANCE": str(tmp_path / "instance"),
        "SECRET_KEY": "s" * 48,
        "DATA_KEY": app.config["DATA_KEY"] * 4,
        "AUDIT_KEY": "a" * 48,
        "PUBLIC_BASE_URL": "https://peixun.example.gov.cn",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": TEST_REDIS_URL,
        "JOB_BACKEND": "celery",
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": app.config["STORAGE_ROOT"],
        "TRANSCODE_PRESET": "ultrafast",
    }


@pytest.fixture
def runtime_venv(tmp_path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-4000:]
    yield venv
    shutil.rmtree(venv, ignore_errors=True)


def test_requirements_alone_run_the_web_server_a_celery_worker_and_a_transcode(
    database_url, fresh_app, runtime_venv, tmp_path
):
    if database_url.startswith("sqlite"):
        pytest.skip("the production install runs once, on PostgreSQL")
    empty_broker(TEST_REDIS_URL)
    env = production_env(fresh_app, runtime_venv, tmp_path)
    web = make_app(
        fresh_app.config["SQLALCHEMY_DATABASE_URI"], JOB_BACKEND="celery", REDIS_URL=TEST_REDIS_URL
    )
    log = tmp_path / "worker.log"
    worker = start(celery_worker_command(runtime_venv / "bin" / "python"), env, log)
    try:
        client = web.test_client()
        token = make_platform(web)
        lesson_id = add_lesson(client, token, create_course(client, token))
        upload_whole(client, token, lesson_id, CLIP.read_bytes())
        deadline = time.monotonic() + TRANSCODE_TIMEOUT_S
        while True:
            with web.app_context():
                job = db.session.scalars(sa.select(Job).where(Job.subject_id == lesson_id)).one()
                status, code = job.status, job.error_code
                lesson = db.session.get(Lesson, lesson_id).status.value
                db.session.remove()
            if status in (JobStatus.DONE, JobStatus.FAILED) or worker.poll() is not None:
                break
            assert time.monotonic() < deadline, f"timed out; log:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        assert (status, code, lesson) == (JobStatus.DONE, None, "ready"), log.read_text()[-4000:]
        with web.app_context():
            locked_by = db.session.get(Job, job.id).locked_by
            db.session.remove()
        assert locked_by.rsplit(":", 1)[1] == str(worker.pid)  # that worker did it
    finally:
        os.killpg(worker.pid, 9)
        worker.wait(timeout=30)
        with web.app_context():
            db.engine.dispose()

    # The web server as production starts it, from the same install: gunicorn answers.
    with gunicorn(
        env, tmp_path / "gunicorn.log", ["--workers", "2"], runtime_venv / "bin" / "python"
    ):
        pass  # gunicorn() waits for /healthz to answer 200, or fails with the log

    # The same install without `packaging`: the worker cannot start (what issue 12 found).
    subprocess.run(
        [
            str(runtime_venv / "bin" / "python"),
            "-m",
            "pip",
            "uninstall",
            "--quiet",
            "-y",
            "packaging",
        ],
        check=True,
        timeout=120,
    )
    broken = subprocess.run(
        celery_worker_command(runtime_venv / "bin" / "python"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert broken.returncode != 0
    assert "No module named 'packaging'" in broken.stdout + broken.stderr
