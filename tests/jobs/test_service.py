"""The job table: atomic claims, retries, giving up, and recovering jobs of dead workers."""

from datetime import timedelta

import pytest

from app.db import utcnow
from app.extensions import db
from app.jobs import service
from app.jobs.models import Job, JobStatus

CALLS: list[int] = []
GIVEN_UP: list[tuple[int, str]] = []


@service.handler(
    "test_flaky", on_give_up=lambda subject, code, _msg: GIVEN_UP.append((subject, code))
)
def flaky(subject_id: int, report: service.Progress) -> None:
    CALLS.append(subject_id)
    report(50)
    if subject_id == 1:
        raise RuntimeError("disk full")
    if subject_id == 2:
        raise service.JobFailed("bad_input", "this input can never work")


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    GIVEN_UP.clear()


def job(_ctx, job_id):
    db.session.expire_all()
    return db.session.get(Job, job_id)


def test_enqueue_reuses_the_unfinished_job_for_the_same_subject(ctx):
    first = service.enqueue("test_flaky", 7)
    db.session.commit()
    assert service.enqueue("test_flaky", 7).id == first.id
    assert service.enqueue("test_flaky", 8).id != first.id


def test_a_job_is_claimed_once(ctx):
    queued = service.enqueue("test_flaky", 3)
    db.session.commit()
    assert service.claim(queued.id) is True
    assert service.claim(queued.id) is False
    assert job(ctx, queued.id).status is JobStatus.RUNNING
    assert job(ctx, queued.id).attempts == 1


def test_successful_job_ends_done_at_100(ctx):
    job_id = service.enqueue("test_flaky", 3).id
    db.session.commit()
    assert service.run_pending() == 1
    done = job(ctx, job_id)
    assert done.status is JobStatus.DONE and done.progress == 100 and done.finished_at


def test_crash_is_retried_then_given_up_with_the_subject_told(ctx):
    job_id = service.enqueue("test_flaky", 1).id
    db.session.commit()
    service.run_pending()
    failed = job(ctx, job_id)
    assert CALLS == [1, 1, 1]  # JOB_MAX_ATTEMPTS
    assert failed.status is JobStatus.FAILED and failed.attempts == 3
    assert failed.error_code == "processing_error" and "disk full" in failed.error_message
    assert GIVEN_UP == [(1, "processing_error")]


def test_permanent_failure_is_not_retried(ctx):
    job_id = service.enqueue("test_flaky", 2).id
    db.session.commit()
    service.run_pending()
    failed = job(ctx, job_id)
    assert CALLS == [2]
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "bad_input")


def test_requeue_stale_takes_back_jobs_of_silent_or_dead_workers(ctx):
    silent = Job(
        kind="test_flaky",
        subject_id=4,
        status=JobStatus.RUNNING,
        locked_by="elsewhere:1",
        heartbeat_at=utcnow() - timedelta(minutes=5),
    )
    dead = Job(
        kind="test_flaky",
        subject_id=5,
        status=JobStatus.RUNNING,
        locked_by=f"{service.worker_id().rpartition(':')[0]}:999999",
        heartbeat_at=utcnow(),
    )
    alive = Job(
        kind="test_flaky",
        subject_id=6,
        status=JobStatus.RUNNING,
        locked_by="elsewhere:2",
        heartbeat_at=utcnow(),
    )
    db.session.add_all([silent, dead, alive])
    db.session.commit()
    ids = silent.id, dead.id, alive.id
    assert sorted(service.requeue_stale()) == sorted(ids[:2])
    assert job(ctx, ids[2]).status is JobStatus.RUNNING
    assert job(ctx, ids[0]).status is JobStatus.QUEUED


def test_unknown_kind_fails_clearly(ctx):
    job_id = service.enqueue("no_such_kind", 1).id
    db.session.commit()
    service.run_pending()
    assert job(ctx, job_id).error_code == "unknown_job"


def test_thread_backend_runs_a_dispatched_job_in_the_background(fresh_app):
    import time

    from tests.conftest import make_app

    web = make_app(
        fresh_app.config["SQLALCHEMY_DATABASE_URI"], JOB_BACKEND="thread", JOB_POLL_S=0.2
    )
    try:
        with web.app_context():
            job_id = service.enqueue("test_flaky", 9).id
            db.session.commit()
            service.dispatch(job_id)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                db.session.expire_all()
                if db.session.get(Job, job_id).status is JobStatus.DONE:
                    break
                time.sleep(0.1)
            assert db.session.get(Job, job_id).status is JobStatus.DONE
            db.session.remove()
        assert CALLS == [9]
    finally:
        backend = web.extensions["veriskill.jobs"]
        backend.worker.stopped.set()
        backend.worker.wake.set()
        backend.thread.join(timeout=5)
        with web.app_context():
            db.engine.dispose()
