"""Face checks judged by job workers (CHECKS_IN_WORKER): 202, poll, then the same verdict.

The real face model and photos throughout. Most tests run the queued job in the test process
(`run_pending`, as a polling worker would); one starts a real Celery worker over Redis.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import utcnow
from app.extensions import db
from app.jobs import schedule
from app.jobs.backends import PollingWorker
from app.jobs.models import Job, JobStatus
from app.jobs.service import enqueue, run_pending, worker_id
from app.learning.models import LessonProgress
from app.study.jobs import VERIFY_CHECK as KIND
from app.verification import service
from app.verification.models import AnswerStatus, Check, CheckAnswer, Evidence
from tests.browser import PHONE, live_server
from tests.conftest import (
    TEST_REDIS_URL,
    api_token,
    bearer,
    make_app,
    make_staff,
    make_trainee,
    multipart,
)
from tests.jobs.test_workers import CELERY_WORKER, empty_broker, kill_group, start, worker_env
from tests.jobs.waiting import job_done
from tests.learning.test_player_in_browser import (
    browser_page,
    camera_video,
    seed_demo_with_face,
    sign_in_and_open_first_lesson,
)
from tests.test_openapi import Contract
from tests.verification.photos import photo, variant

SECOND_ID = "440304199512310024"
CELERY_REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/12"
CHECK_PATH = "/api/v1/checks/{check_id}"


@pytest.fixture
def study_in_worker(study, fresh_app, monkeypatch):
    """The study fixture with checks judged by workers; tests run the queued jobs."""
    monkeypatch.setitem(fresh_app.config, "CHECKS_IN_WORKER", True)
    study.enrol()
    return study


@pytest.fixture
def contract(client) -> Contract:
    return Contract(client.get("/api/v1/openapi.json").get_json())


def open_session(study) -> tuple[int, dict]:
    response = study.client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body["id"], body["check"]


def send(study, check_id: int, *images: bytes):
    body, content_type = multipart([("frames", f"{n}.jpg", data) for n, data in enumerate(images)])
    return study.client.post(
        f"/api/v1/checks/{check_id}", data=body, content_type=content_type, headers=study.auth
    )


def queued(study, check_id: int, *images: bytes, contract: Contract | None = None) -> dict:
    response = send(study, check_id, *images)
    assert response.status_code == 202, response.get_json()
    if contract is not None:
        contract.check(response, "post", CHECK_PATH)
    return response.get_json()


def state(study, check_id: int, contract: Contract | None = None) -> dict:
    response = study.client.get(f"/api/v1/checks/{check_id}", headers=study.auth)
    assert response.status_code == 200, response.get_json()
    if contract is not None:
        contract.check(response, "get", CHECK_PATH)
    return response.get_json()


def run_jobs(app) -> int:
    with app.app_context():
        return run_pending()


def waiting_frames(app) -> list[Path]:
    root = Path(app.config["STORAGE_ROOT"]) / service.ANSWER_PREFIX
    return [path for path in root.rglob("*") if path.is_file()]


def answer_row(app, check_id: int) -> CheckAnswer:
    """The check's latest answer."""
    with app.app_context():
        answer = db.session.scalars(
            sa.select(CheckAnswer)
            .where(CheckAnswer.check_id == check_id)
            .order_by(CheckAnswer.attempt.desc())
            .limit(1)
        ).one()
        db.session.expunge(answer)
        return answer


def pass_sign_in(study, app) -> int:
    session_id, check = open_session(study)
    study.checks_answered += 1
    queued(study, check["id"], variant("obama_2.jpg", study.checks_answered))
    assert run_jobs(app) == 1
    assert state(study, check["id"])["status"] == "passed"
    return session_id


def test_an_answer_is_queued_judged_by_the_worker_and_then_credit_flows(
    study_in_worker, fresh_app, contract
):
    study = study_in_worker
    session_id, check = open_session(study)
    reply = queued(study, check["id"], variant("obama_2.jpg", 1), contract=contract)
    assert reply["id"] == check["id"] and reply["kind"] == "sign_in"
    assert (reply["status"], reply["code"], reply["passed"]) == ("judging", None, False)
    assert state(study, check["id"], contract)["status"] == "judging"
    assert len(waiting_frames(fresh_app)) == 1
    with fresh_app.app_context():
        pending = db.session.get(Check, check["id"])
        assert (pending.status.value, pending.attempts) == ("pending", 0)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Evidence)) == 1  # ref
    # While the worker has it, nothing is credited.
    study.beat(session_id, 0)
    held = study.beat(session_id, 2, after=2).get_json()
    assert (held["credited_s"], held["reason"]) == (0, "check_pending")

    assert run_jobs(fresh_app) == 1
    verdict = state(study, check["id"], contract)
    assert verdict["status"] == "passed" and verdict["passed"] is True
    assert verdict["code"] == "passed" and verdict["retry"] is False
    assert 0.44 <= verdict["score"] <= 1 and verdict["voided_s"] == 0
    assert waiting_frames(fresh_app) == []  # the waiting copy is gone, the evidence stays
    answer = answer_row(fresh_app, check["id"])
    assert (answer.status, answer.passed, answer.code) == (AnswerStatus.JUDGED, True, "passed")
    assert answer.score == verdict["score"] and answer.judged_at is not None
    with fresh_app.app_context():
        judged = db.session.get(Check, check["id"])
        assert (judged.status.value, judged.attempts, judged.score) == (
            "passed",
            1,
            verdict["score"],
        )
        snapshot = db.session.scalars(sa.select(Evidence).where(Evidence.check_id == judged.id))
        assert [(e.kind.value, e.result) for e in snapshot] == [("snapshot", "match")]
        job = db.session.scalars(sa.select(Job).where(Job.kind == KIND)).one()
        assert (job.subject_id, job.status) == (answer.id, JobStatus.DONE)
    credited = study.beat(session_id, 4, after=2).get_json()
    assert credited["credited_s"] == pytest.approx(2.0, abs=0.1) and credited["check"] is None


def test_a_wrong_face_fails_as_mismatch_in_the_worker_and_voids_the_time(
    study_in_worker, fresh_app, checks_every_4s
):
    study = study_in_worker
    enrollment_id = study.enrol()
    session_id = pass_sign_in(study, fresh_app)
    check = study.watch_until_random_check(session_id)
    for attempt in range(1, 4):  # the first two may be tried again, the third decides
        assert queued(study, check["id"], photo("biden_2.jpg"))["status"] == "judging"
        assert run_jobs(fresh_app) == 1
        verdict = state(study, check["id"])
        assert verdict["attempts"] == attempt and verdict["retry"] is (attempt < 3)
    assert (verdict["status"], verdict["passed"], verdict["code"]) == ("failed", False, "mismatch")
    assert verdict["score"] < 0.44
    assert verdict["voided_s"] == pytest.approx(4.0, abs=0.1)
    body = study.enrollment(enrollment_id)
    assert body["credited_s"] == pytest.approx(4.0, abs=0.1) and body["verified_s"] == 0
    answer = answer_row(fresh_app, check["id"])
    assert (answer.passed, answer.code) == (False, "mismatch")
    assert answer.voided_s == pytest.approx(4.0, abs=0.1)
    with fresh_app.app_context():
        progress = db.session.scalar(sa.select(LessonProgress))
        assert progress.voided_s == pytest.approx(4.0, abs=0.1)
    # As after a failure judged in the request: studying goes on, no new check at once.
    again = study.beat(session_id, 6, after=2).get_json()
    assert again["check"] is None


def test_an_answer_queued_in_time_is_judged_even_after_the_window_closes(
    study_in_worker, fresh_app, monkeypatch
):
    study = study_in_worker
    monkeypatch.setitem(fresh_app.config, "CHECK_WINDOW_S", 1.0)
    session_id, check = open_session(study)
    queued(study, check["id"], variant("obama_2.jpg", 1))
    time.sleep(1.3)  # the window closes while the answer waits for a worker
    beat = study.beat(session_id, 0).get_json()
    assert beat["reason"] == "check_pending" and beat["check"]["id"] == check["id"]
    assert state(study, check["id"])["status"] == "judging"
    late = send(study, check["id"], variant("obama_2.jpg", 2))
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "check_judging"
    assert run_jobs(fresh_app) == 1
    assert state(study, check["id"])["status"] == "passed"
    with fresh_app.app_context():
        judged = db.session.get(Check, check["id"])
        assert (judged.status.value, judged.code) == ("passed", None)


def test_a_second_answer_while_one_is_judged_gets_409_and_stores_nothing(
    study_in_worker, fresh_app, contract
):
    study = study_in_worker
    _, check = open_session(study)
    queued(study, check["id"], variant("obama_2.jpg", 1))
    second = send(study, check["id"], variant("obama_2.jpg", 2))
    assert second.status_code == 409
    body = contract.check(second, "post", CHECK_PATH)
    assert body["error"]["code"] == "check_judging" and body["error"]["message"]
    assert len(waiting_frames(fresh_app)) == 1
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckAnswer)) == 1
    assert run_jobs(fresh_app) == 1
    closed = send(study, check["id"], variant("obama_2.jpg", 3))
    assert closed.status_code == 409 and closed.get_json()["error"]["code"] == "check_closed"


def test_running_the_job_again_settles_nothing_twice(study_in_worker, fresh_app, checks_every_4s):
    study = study_in_worker
    enrollment_id = study.enrol()
    session_id = pass_sign_in(study, fresh_app)
    check = study.watch_until_random_check(session_id)
    queued(study, check["id"], photo("two_people.jpg"))  # a second face fails at once
    # Keep a copy of the waiting frame to put back: a crash after the commit leaves it behind.
    (frame,) = waiting_frames(fresh_app)
    kept = frame.read_bytes()
    assert run_jobs(fresh_app) == 1
    first = state(study, check["id"])
    assert first["status"] == "failed"

    def record() -> tuple:
        with fresh_app.app_context():
            judged = db.session.get(Check, check["id"])
            answer = db.session.scalars(
                sa.select(CheckAnswer).where(CheckAnswer.check_id == judged.id)
            ).one()
            progress = db.session.scalar(sa.select(LessonProgress))
            evidence = db.session.scalar(sa.select(sa.func.count()).select_from(Evidence))
            return (
                judged.attempts,
                judged.answered_at,
                judged.settled_s,
                answer.judged_at,
                answer.voided_s,
                progress.voided_s,
                evidence,
            )

    before = record()
    frame.parent.mkdir(parents=True, exist_ok=True)
    frame.write_bytes(kept)
    with fresh_app.app_context():
        answer_id = db.session.scalar(
            sa.select(CheckAnswer.id).where(CheckAnswer.check_id == check["id"])
        )
        enqueue(KIND, answer_id)  # a redelivered task
        db.session.commit()
    assert run_jobs(fresh_app) == 1
    assert record() == before
    assert state(study, check["id"]) == first
    assert study.enrollment(enrollment_id)["verified_s"] == 0
    assert waiting_frames(fresh_app) == []  # the leftover is cleaned up


def test_frames_that_are_not_photos_ask_for_another_answer(study_in_worker, fresh_app):
    study = study_in_worker
    _, check = open_session(study)
    queued(study, check["id"], b"plain text, not a photo")  # only the model's decoder can tell
    assert run_jobs(fresh_app) == 1
    retry = state(study, check["id"])
    assert (retry["status"], retry["code"], retry["retry"]) == ("pending", "not_an_image", True)
    with fresh_app.app_context():
        assert db.session.get(Check, check["id"]).attempts == 0  # as a 422 in the request
    queued(study, check["id"], variant("obama_2.jpg", 1))
    assert run_jobs(fresh_app) == 1
    assert state(study, check["id"])["status"] == "passed"


def test_an_answer_the_worker_cannot_judge_frees_the_check(study_in_worker, fresh_app):
    study = study_in_worker
    _, check = open_session(study)
    queued(study, check["id"], variant("obama_2.jpg", 1))
    for frame in waiting_frames(fresh_app):
        frame.unlink()  # storage lost it: every attempt crashes
    assert run_jobs(fresh_app) == fresh_app.config["JOB_MAX_ATTEMPTS"]
    freed = state(study, check["id"])
    assert (freed["status"], freed["code"], freed["retry"]) == ("pending", "not_judged", True)
    assert answer_row(fresh_app, check["id"]).status is AnswerStatus.ABANDONED
    with fresh_app.app_context():
        job = db.session.scalars(sa.select(Job).where(Job.kind == KIND)).one()
        assert (job.status, job.error_code) == (JobStatus.FAILED, "processing_error")
    queued(study, check["id"], variant("obama_2.jpg", 2))
    assert run_jobs(fresh_app) == 1
    assert state(study, check["id"])["status"] == "passed"


def test_an_answer_no_worker_judges_in_time_is_handed_back_to_answer_again(
    study_in_worker, fresh_app
):
    """Every worker busy or the broker down: the answer is not left "judging" for good. After
    CHECK_JUDGE_MAX_WAIT_S the schedule hands it back as `not_judged` with a fresh window."""
    study = study_in_worker
    _, check = open_session(study)
    queued(study, check["id"], variant("obama_2.jpg", 1))
    max_wait = fresh_app.config["CHECK_JUDGE_MAX_WAIT_S"]
    with fresh_app.app_context():
        assert "hand_back_late_answers" in schedule.run_due(by="test")
        db.session.execute(  # the answer waited too long, and the check's window closed
            sa.update(CheckAnswer).values(received_at=utcnow() - timedelta(seconds=max_wait + 1))
        )
        db.session.execute(
            sa.update(Check)
            .where(Check.id == check["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert state(study, check["id"])["status"] == "judging"  # not yet the schedule's turn
    with fresh_app.app_context():
        db.session.execute(sa.delete(schedule.ScheduleRun))  # the next interval
        db.session.commit()
        assert "hand_back_late_answers" in schedule.run_due(by="test")
    back = state(study, check["id"])
    assert (back["status"], back["code"], back["retry"]) == ("pending", "not_judged", True)
    assert back["attempts"] == 0  # no try was used up
    with fresh_app.app_context():
        assert db.session.get(Check, check["id"]).expires_at > utcnow()  # time to answer again
    assert answer_row(fresh_app, check["id"]).status is AnswerStatus.ABANDONED
    assert waiting_frames(fresh_app) == []
    queued(study, check["id"], variant("obama_2.jpg", 2))
    assert run_jobs(fresh_app) == 2  # the late job finds its answer handed back; then the new
    assert state(study, check["id"])["status"] == "passed"
    with fresh_app.app_context():
        jobs = db.session.scalars(sa.select(Job).where(Job.kind == KIND)).all()
        assert {job.status for job in jobs} == {JobStatus.DONE}


def test_a_check_is_shown_only_to_its_trainee(study_in_worker, fresh_app, client, contract):
    study = study_in_worker
    _, check = open_session(study)
    make_trainee(fresh_app, SECOND_ID, phone="13700000000", name="拜登")
    other = bearer(api_token(client, SECOND_ID, "Study2026ok"))
    url = f"/api/v1/checks/{check['id']}"
    peek = client.get(url, headers=other)
    assert peek.status_code == 404
    assert contract.check(peek, "get", CHECK_PATH)["error"]["code"] == "not_found"
    body, content_type = multipart([("frames", "0.jpg", photo("biden_2.jpg"))])
    answered = client.post(url, data=body, content_type=content_type, headers=other)
    assert answered.status_code == 404
    assert client.get("/api/v1/checks/999999", headers=study.auth).status_code == 404
    make_staff(fresh_app)
    auditor = bearer(api_token(client, "auditor1", "Audit2026ok"))
    denied = client.get(url, headers=auditor)
    assert denied.status_code == 403
    assert contract.check(denied, "get", CHECK_PATH)["error"]["code"] == "forbidden"
    assert state(study, check["id"])["status"] == "pending"  # untouched
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckAnswer)) == 0


def test_checks_judged_in_the_request_read_the_same_through_get(study, fresh_app, contract):
    study.enrol()
    _, check = open_session(study)
    assert state(study, check["id"], contract)["status"] == "pending"
    verdict = study.answer(check["id"], variant("obama_2.jpg", 1))  # 200, judged inline
    shown = state(study, check["id"], contract)
    assert shown["status"] == "passed"
    assert {key: shown[key] for key in verdict} == verdict
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckAnswer)) == 0


def test_workers_judge_by_default_exactly_with_celery(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "CHECKS_IN_WORKER", None)
    for backend, expected in (("celery", True), ("thread", False), ("external", False)):
        monkeypatch.setitem(ctx.config, "JOB_BACKEND", backend)
        assert service.checks_in_worker() is expected
    monkeypatch.setitem(ctx.config, "CHECKS_IN_WORKER", False)
    monkeypatch.setitem(ctx.config, "JOB_BACKEND", "celery")
    assert service.checks_in_worker() is False


@pytest.mark.slow
@pytest.mark.database("postgresql")
def test_a_real_celery_worker_judges_an_answer(database_url, study, fresh_app, tmp_path):
    if database_url.startswith("sqlite"):
        pytest.skip("the Celery worker runs once, on PostgreSQL")
    empty_broker(CELERY_REDIS_URL)
    # The web app as production runs it: Celery jobs, so checks go to workers by default.
    web = make_app(
        fresh_app.config["SQLALCHEMY_DATABASE_URI"],
        JOB_BACKEND="celery",
        REDIS_URL=CELERY_REDIS_URL,
    )
    assert web.config["CHECKS_IN_WORKER"] is None
    log = tmp_path / "celery.log"
    worker = start(
        CELERY_WORKER,
        worker_env(
            fresh_app,
            JOB_BACKEND="celery",
            REDIS_URL=CELERY_REDIS_URL,
            LIVENESS="off",
        ),
        log,
    )
    try:
        study.client = web.test_client()
        study.enrol()
        _, check = open_session(study)
        assert queued(study, check["id"], variant("obama_2.jpg", 1))["status"] == "judging"
        deadline = time.monotonic() + 90
        shown = state(study, check["id"])
        while shown["status"] == "judging" and time.monotonic() < deadline:
            time.sleep(0.5)
            shown = state(study, check["id"])
        assert shown["status"] == "passed", f"{shown}; worker log:\n{log.read_text()[-3000:]}"
        assert shown["code"] == "passed" and 0.44 <= shown["score"] <= 1
        # The verdict commits first, the job's outcome just after: stop the worker after both.
        job_done(fresh_app, Job.kind == KIND)
    finally:
        kill_group(worker)
        with web.app_context():
            db.engine.dispose()
    with fresh_app.app_context():
        job = db.session.scalars(sa.select(Job).where(Job.kind == KIND)).one()
        assert job.status is JobStatus.DONE and job.locked_by != worker_id()  # not this process
        answer = db.session.scalars(sa.select(CheckAnswer)).one()
        assert answer.status is AnswerStatus.JUDGED and answer.passed is True
    assert waiting_frames(fresh_app) == []


@contextmanager
def polling_worker(app):
    """A real polling worker on a thread of this process, as the thread backend runs one."""
    worker = PollingWorker(app, 0.2)
    thread = threading.Thread(target=worker.run_forever, name="test-job-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stopped.set()
        worker.wake.set()
        thread.join(timeout=30)


@pytest.mark.browser
@pytest.mark.slow
def test_the_player_says_checking_while_a_worker_judges_then_goes_on(
    database_url, fresh_app, runner, monkeypatch, tmp_path
):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser run is enough; it runs on SQLite")
    monkeypatch.setitem(fresh_app.config, "CHECKS_IN_WORKER", True)
    camera = tmp_path / "obama.y4m"
    camera_video("obama_2.jpg", 221, camera)
    seed_demo_with_face(fresh_app, runner)
    with (
        polling_worker(fresh_app),
        live_server(fresh_app) as base,
        browser_page(camera, PHONE) as page,
    ):
        sign_in_and_open_first_lesson(page, base)
        page.wait_for_selector("#check", state="visible", timeout=20_000)
        page.wait_for_function(
            """() => {
              const dialog = document.getElementById("check");
              const checking = JSON.parse(dialog.dataset.messages).checking;
              return checking && document.getElementById("check-status").textContent
                === checking;
            }""",
            timeout=40_000,
        )
        page.wait_for_selector("#check", state="hidden", timeout=40_000)
    with fresh_app.app_context():
        answers = db.session.scalars(sa.select(CheckAnswer)).all()
        assert [(a.status, a.passed) for a in answers][-1] == (AnswerStatus.JUDGED, True)
        assert db.session.scalar(sa.select(Check.status)).value == "passed"
