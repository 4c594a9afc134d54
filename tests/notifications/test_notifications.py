"""The inbox: raised where facts happen, rendered in the reader's language, marked read; and a
text message where SMS is configured, sent by a job after the commit and retried when lost."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from app.certificates import service as certificates
from app.extensions import db
from app.identity.models import User
from app.jobs.models import Job, JobStatus
from app.jobs.service import run_pending
from app.learning.models import StudySession
from app.notifications import service
from app.notifications.models import Notification
from app.subsidy import service as subsidy
from app.verification import service as verification
from app.verification.models import CheckKind
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    csrf_from,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.study import study_session
from tests.verification.photos import photo

SECOND_ID = "440304199512310024"


def notifications_of(app, user_id: int) -> list[tuple[str, dict]]:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)
        )
        return [(row.kind, json.loads(row.params)) for row in rows]


def fail_a_check(app, user_id: int, code: str = "mismatch") -> None:
    with app.app_context():
        session_id = db.session.scalar(
            sa.select(StudySession.id).where(StudySession.trainee_id == user_id)
        )
    if session_id is None:
        session_id = study_session(app, user_id)
    with app.test_request_context():
        check = verification.open_check(session_id, user_id, CheckKind.RANDOM, 5.0)
        verification.close_check(check, passed=False, code=code, judged=None, settled_s=12.0)
        db.session.commit()


def test_a_failed_and_a_missed_check_reach_the_inbox_with_their_course(fresh_app):
    user_id = make_trainee(fresh_app)
    fail_a_check(fresh_app, user_id, "replay")
    fail_a_check(fresh_app, user_id, "expired")
    (failed, params), (missed, _) = notifications_of(fresh_app, user_id)
    assert (failed, missed) == ("check_failed", "check_missed")
    assert params["code"] == "replay" and params["course"] == "低压电工作业"
    assert params["enrollment_id"] and params["check_id"]


def test_a_passed_check_raises_nothing(fresh_app):
    user_id = make_trainee(fresh_app)
    session_id = study_session(fresh_app, user_id)
    with fresh_app.test_request_context():
        check = verification.open_check(session_id, user_id, CheckKind.RANDOM, 5.0)
        verification.close_check(check, passed=True, code=None, judged=None, settled_s=12.0)
        db.session.commit()
    assert notifications_of(fresh_app, user_id) == []


def test_the_text_is_rendered_when_read_not_stored(fresh_app, enrollment):
    """Kind and params are kept, never the sentence: the same row reads in each reader's
    language (the revocation's reason is one of the subsidy's translated sentences)."""
    _, enrollment_id = enrollment
    with fresh_app.test_request_context():
        certificates.issue(enrollment_id, hours=2)
        certificates.revoke(enrollment_id, reason="subsidy_rejected")
        db.session.commit()
        row = db.session.scalars(
            sa.select(Notification).where(Notification.kind == "certificate_revoked")
        ).one()
        assert set(json.loads(row.params)) == {"number", "course", "reason", "enrollment_id"}
        with force_locale("en"):
            english = service.render(row)
        with force_locale("zh"):
            chinese = service.render(row)
    assert "An auditor rejected the subsidy for this training." in english
    assert "审核员驳回了此次培训的补贴。" in chinese


def test_an_identity_question_is_told_to_the_trainee_who_enrolled(fresh_app):
    first = make_trainee(fresh_app)
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000")
    with fresh_app.test_request_context():
        verification.enrol_face(db.session.get(User, first), photo("obama_1.jpg"))
        db.session.commit()
        verification.enrol_face(db.session.get(User, second), photo("obama_3.jpg"))
        db.session.commit()
    assert notifications_of(fresh_app, first) == []
    [(kind, params)] = notifications_of(fresh_app, second)
    assert kind == "identity_flag" and params["code"] == "duplicate_identity"


@pytest.fixture
def enrollment(fresh_app) -> tuple[int, int]:
    """A trainee's enrolment (no video needed): (user id, enrolment id)."""
    user_id = make_trainee(fresh_app)
    session_id = study_session(fresh_app, user_id)
    with fresh_app.app_context():
        return user_id, db.session.get(StudySession, session_id).enrollment_id


def test_certificates_issued_and_revoked_are_told(fresh_app, enrollment):
    _, enrollment_id = enrollment
    with fresh_app.test_request_context():
        number = certificates.issue(enrollment_id, hours=2).number
        certificates.issue(enrollment_id, hours=2)  # the same certificate: nothing new
        certificates.revoke(enrollment_id, reason="subsidy_rejected")
        db.session.commit()
        rows = list(db.session.scalars(sa.select(Notification).order_by(Notification.id)))
        with force_locale("en"):
            texts = [service.render(row) for row in rows]
    assert [row.kind for row in rows] == ["certificate_issued", "certificate_revoked"]
    assert number in texts[0] and number in texts[1]
    assert "An auditor rejected the subsidy" in texts[1]


def test_subsidy_decisions_and_appeals_are_told(fresh_app, enrollment):
    user_id, enrollment_id = enrollment
    auditor_id = make_staff(fresh_app)
    with fresh_app.test_request_context():
        auditor = db.session.get(User, auditor_id)
        subsidy.decide(enrollment_id, "reject", "someone else watched", auditor=auditor)
        db.session.commit()
        subsidy.appeal(db.session.get(User, user_id), enrollment_id, "it was me")
        db.session.commit()
        subsidy.decide(enrollment_id, "reject", "the photos show another person", auditor=auditor)
        db.session.commit()
    kinds = [(kind, params["status"]) for kind, params in notifications_of(fresh_app, user_id)]
    assert kinds == [("subsidy_decided", "ineligible"), ("appeal_decided", "ineligible")]


def test_a_rejection_waiting_for_a_second_auditor_is_not_told_yet(
    fresh_app, enrollment, monkeypatch
):
    monkeypatch.setitem(fresh_app.config, "REJECTION_NEEDS_SECOND_AUDITOR", True)
    user_id, enrollment_id = enrollment
    auditor_id = make_staff(fresh_app)
    with fresh_app.test_request_context():
        auditor = db.session.get(User, auditor_id)
        subsidy.decide(enrollment_id, "reject", "someone else watched", auditor=auditor)
        db.session.commit()
    assert notifications_of(fresh_app, user_id) == []


# --- reading ---------------------------------------------------------------------------------


def test_the_inbox_api_pages_counts_and_marks_read(client, fresh_app):
    user_id = make_trainee(fresh_app)
    for _ in range(3):
        fail_a_check(fresh_app, user_id)
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    first = client.get("/api/v1/me/notifications?limit=2", headers=bearer(token)).get_json()
    assert first["unread"] == 3 and len(first["items"]) == 2
    assert first["items"][0]["id"] > first["items"][1]["id"]  # newest first
    assert first["items"][0]["text"] and first["items"][0]["link"].startswith("/learn/")
    rest = client.get(
        f"/api/v1/me/notifications?before={first['next_before']}", headers=bearer(token)
    ).get_json()
    assert len(rest["items"]) == 1 and rest["next_before"] is None

    oldest = rest["items"][0]["id"]
    marked = client.post(f"/api/v1/me/notifications/{oldest}/read", headers=bearer(token))
    assert marked.status_code == 200
    assert marked.get_json()["read"] is True and marked.get_json()["unread"] == 2
    again = client.post(f"/api/v1/me/notifications/{oldest}/read", headers=bearer(token))
    assert again.get_json()["unread"] == 2


def test_nobody_reads_or_marks_another_accounts_notification(client, fresh_app):
    user_id = make_trainee(fresh_app)
    fail_a_check(fresh_app, user_id)
    make_trainee(fresh_app, SECOND_ID, phone="13700000000")
    token = api_token(client, SECOND_ID, TRAINEE_PASSWORD)
    assert client.get("/api/v1/me/notifications", headers=bearer(token)).get_json()["items"] == []
    with fresh_app.app_context():
        theirs = db.session.scalar(sa.select(Notification.id))
    response = client.post(f"/api/v1/me/notifications/{theirs}/read", headers=bearer(token))
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "notification_not_found"


def test_a_bad_cursor_is_a_422(client, fresh_app):
    make_trainee(fresh_app)
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    response = client.get("/api/v1/me/notifications?before=abc", headers=bearer(token))
    assert response.status_code == 422


def test_the_inbox_page_lists_and_marks_read(client, fresh_app):
    user_id = make_trainee(fresh_app)
    fail_a_check(fresh_app, user_id)
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    page = client.get("/me/inbox")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "低压电工作业" in html and "notice-unread" in html
    with fresh_app.app_context():
        notification_id = db.session.scalar(sa.select(Notification.id))
    response = client.post(
        f"/me/inbox/{notification_id}/read", data={"csrf_token": csrf_from(html), "open": "1"}
    )
    assert response.status_code == 302 and response.headers["Location"].startswith("/learn/")
    assert "notice-unread" not in client.get("/me/inbox").get_data(as_text=True)


# --- text messages ---------------------------------------------------------------------------


def test_no_text_message_without_sms(fresh_app, enrollment):
    _, enrollment_id = enrollment
    with fresh_app.test_request_context():
        certificates.issue(enrollment_id, hours=2)
        db.session.commit()
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0


def test_a_text_message_is_sent_by_a_job_after_the_commit(
    fresh_app, enrollment, monkeypatch, caplog
):
    monkeypatch.setitem(fresh_app.config, "SMS_BACKEND", "log")
    user_id, enrollment_id = enrollment
    with fresh_app.test_request_context():
        service.notify(user_id, "certificate_issued", number="VS2026-X", course="低压电工作业")
        db.session.rollback()  # the fact did not happen: neither did its message
    assert notifications_of(fresh_app, user_id) == []
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0
    with fresh_app.test_request_context():
        certificates.issue(enrollment_id, hours=2)
        db.session.commit()
    caplog.set_level(logging.INFO, logger="app.identity.sms")
    with fresh_app.app_context():
        assert run_pending() == 1
        row = db.session.scalars(sa.select(Notification)).one()
        assert row.sms_sent_at is not None
    sent = [r.getMessage() for r in caplog.records if r.name == "app.identity.sms"]
    assert len(sent) == 1
    assert "139****5678" in sent[0] and "notice_certificate_issued" in sent[0]
    assert "13912345678" not in sent[0]


def test_a_lost_text_message_is_tried_again(fresh_app, enrollment, monkeypatch):
    """The provider cannot be reached (nothing listens on the port): the attempt fails and the
    job goes back to the queue; nothing is marked sent."""
    monkeypatch.setitem(fresh_app.config, "SMS_BACKEND", "aliyun")
    monkeypatch.setitem(
        fresh_app.config, "SMS_ALIYUN_TEMPLATES", "notice_certificate_issued=SMS_123"
    )
    monkeypatch.setitem(fresh_app.config, "SMS_ALIYUN_ENDPOINT", "http://127.0.0.1:9/")
    monkeypatch.setitem(fresh_app.config, "SMS_TIMEOUT_S", 2.0)
    _, enrollment_id = enrollment
    with fresh_app.test_request_context():
        certificates.issue(enrollment_id, hours=2)
        db.session.commit()
    with fresh_app.app_context():
        job_id = db.session.scalar(sa.select(Job.id))
        from app.jobs.service import claim, execute

        assert claim(job_id)
        execute(job_id)
        job = db.session.get(Job, job_id)
        assert job.status is JobStatus.QUEUED and job.attempts == 1
        assert db.session.scalars(sa.select(Notification)).one().sms_sent_at is None
