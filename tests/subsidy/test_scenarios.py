"""The subsidy decision from evidence, scenario by scenario, through the API.

Each scenario is a trainee's whole story with the real face model and real photos: what they
did, the status the rules give, the reasons with their evidence, and what auditors then decide.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.db import utcnow
from app.extensions import db
from app.identity.models import Role
from app.subsidy import service as subsidy
from app.verification.models import Evidence
from tests.conftest import api_token, bearer, make_staff, make_trainee
from tests.courses.helpers import OCCUPATION
from tests.learning.test_study_time import watch_honestly
from tests.study import enrol_face
from tests.verification.photos import photo, variant

SECOND_ID = "440304199512310024"


@pytest.fixture
def auditor(study, fresh_app, client):
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    return bearer(api_token(client, "auditor1", "Audit2026ok"))


@pytest.fixture
def standard(fresh_app):
    with fresh_app.test_request_context():
        subsidy.set_standard(OCCUPATION, "junior", "1200.50", staff=None)
        db.session.commit()
    return "1200.50"


def codes(body: dict) -> list[str]:
    return [reason["code"] for reason in body["subsidy"]["reasons"]]


def reason(body: dict, code: str) -> dict:
    return next(r for r in body["subsidy"]["reasons"] if r["code"] == code)


def open_session(study) -> dict:
    response = study.client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def complete_honestly(study) -> int:
    enrollment_id = study.enrol()
    watch_honestly(study, study.start())
    return enrollment_id


def queue(client, headers) -> list[dict]:
    response = client.get("/api/v1/audit/reviews", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def decide(client, headers, enrollment_id: int, decision: str, reason: str = "核对无误"):
    return client.post(
        f"/api/v1/audit/enrollments/{enrollment_id}/decision",
        json={"decision": decision, "reason": reason},
        headers=headers,
    )


def certificate(client, number: str) -> dict:
    response = client.get(f"/api/v1/certificates/{number}")
    assert response.status_code == 200
    return response.get_json()


def test_honest_trainee_is_eligible_with_the_standard_amount_and_a_certificate(
    study, standard, auditor
):
    enrollment_id = complete_honestly(study)
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "eligible"
    assert codes(body) == ["complete", "checks_passed"]
    assert reason(body, "checks_passed")["evidence"]["checks"]  # the sign-in check's id
    assert reason(body, "complete")["evidence"]["sessions"]
    assert all(r["message"] for r in body["subsidy"]["reasons"])
    assert body["subsidy"]["amount_yuan"] == standard
    issued = certificate(study.client, body["certificate_no"])
    assert issued["valid"] is True and issued["occupation_code"] == OCCUPATION
    assert queue(study.client, auditor) == []


def test_trainee_whose_check_was_answered_by_someone_else_waits_for_review(
    study, checks_every_4s, auditor
):
    enrollment_id = study.enrol()
    session = study.start()
    check = study.watch_until_random_check(session)
    assert study.fail_check(check["id"], photo("biden_2.jpg"))["code"] == "mismatch"
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "needs_review"
    assert codes(body)[0] == "check_mismatch"
    evidence = reason(body, "check_mismatch")["evidence"]
    assert evidence["check"] == check["id"] and evidence["session"] == session
    assert evidence["score"] < 0.44
    assert body["certificate_no"] is None
    [item] = queue(study.client, auditor)
    assert item["enrollment_id"] == enrollment_id and item["risk"] >= 60
    assert item["trainee"]["name"].endswith("*") and "*" in item["trainee"]["id_number"]
    assert {c["id"]: c["code"] for c in item["checks"]}[check["id"]] == "mismatch"


def test_trainee_who_skipped_ahead_earns_nothing_for_it_and_stays_in_progress(
    study, auditor, standard
):
    enrollment_id = study.enrol()
    session = study.start()
    study.beat(session, 0)
    study.beat(session, 2, after=2)
    jump = study.beat(session, 8, after=2).get_json()
    assert jump["reason"] == "too_fast" and jump["credited_s"] <= 2
    beyond = study.beat(session, 10, after=2).get_json()
    assert beyond["reason"] == "ahead_of_furthest" and beyond["credited_s"] == 0
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "in_progress"
    assert codes(body) == ["lessons_incomplete", "checks_passed", "skipped_ahead"]
    assert reason(body, "lessons_incomplete")["evidence"]["lessons"] == [study.lesson_id]
    assert reason(body, "skipped_ahead")["evidence"]["sessions"] == [session]
    assert queue(study.client, auditor) == []


def test_trainee_who_replayed_a_snapshot_waits_for_review(study, auditor):
    enrollment_id = study.enrol()
    study.start()  # passes with a fresh picture
    reused = variant("obama_2.jpg", study.checks_answered)  # the very bytes sent just now
    check = open_session(study)["check"]
    assert study.answer(check["id"], reused)["code"] == "replay"
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "needs_review"
    assert reason(body, "check_replay")["evidence"]["check"] == check["id"]
    [item] = queue(study.client, auditor)
    assert item["risk"] >= 80


def test_duplicate_identity_waits_for_review_and_tops_the_queue(study, fresh_app, client, auditor):
    # One trainee with a mismatch (risk 60) and one whose face is already on another account.
    first = study.enrol()
    check = open_session(study)["check"]
    study.fail_check(check["id"], photo("biden_2.jpg"))
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000", name="奥巴")
    enrol_face(fresh_app, second, photo("obama_3.jpg"))
    token = bearer(api_token(client, SECOND_ID, "Study2026ok"))
    enrolled = client.post(f"/api/v1/courses/{study.course_id}/enrollments", headers=token)
    duplicate = enrolled.get_json()["id"]
    blocked = client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=token)
    assert blocked.get_json()["error"]["code"] == "identity_under_review"
    body = client.get(f"/api/v1/enrollments/{duplicate}", headers=token).get_json()
    assert body["subsidy"]["status"] == "needs_review"
    assert reason(body, "duplicate_identity")["evidence"]["flag"]
    assert [item["enrollment_id"] for item in queue(client, auditor)] == [duplicate, first]


def test_auditor_clears_a_failed_check_and_the_completed_trainee_becomes_eligible(
    study, standard, auditor, fresh_app
):
    enrollment_id = study.enrol()
    sign_in = open_session(study)
    session = sign_in["id"]
    assert study.fail_check(sign_in["check"]["id"], photo("biden_2.jpg"))["code"] == "mismatch"
    watch_honestly(study, session)  # its closing check confirms the time
    body = study.enrollment(enrollment_id)
    assert body["completed"] and body["subsidy"]["status"] == "needs_review"
    assert body["certificate_no"] is None
    failed = reason(body, "check_mismatch")["evidence"]["check"]

    missing = study.client.post(f"/api/v1/audit/checks/{failed}/clear", json={}, headers=auditor)
    assert missing.status_code == 422 and "reason" in missing.get_json()["error"]["fields"]
    cleared = study.client.post(
        f"/api/v1/audit/checks/{failed}/clear",
        json={"reason": "同一人，光线过暗导致比对失败"},
        headers=auditor,
    )
    assert cleared.status_code == 200, cleared.get_json()
    assert cleared.get_json()["subsidy"]["status"] == "eligible"
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "eligible"
    evidence = reason(body, "check_cleared")["evidence"]
    assert evidence == {
        "check": failed,
        "at": evidence["at"],
        "decision": cleared.get_json()["decision"]["id"],
    }
    assert body["subsidy"]["amount_yuan"] == standard
    assert certificate(study.client, body["certificate_no"])["valid"] is True
    twice = study.client.post(
        f"/api/v1/audit/checks/{failed}/clear", json={"reason": "again"}, headers=auditor
    )
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "already_cleared"
    with fresh_app.app_context():
        actions = db.session.scalars(sa.select(AuditEntry.action)).all()
        assert "subsidy.clear_check" in actions and "subsidy.eligible" in actions


def test_auditor_rejects_the_certificate_is_revoked_and_an_appeal_reopens_it(
    study, standard, auditor, fresh_app
):
    enrollment_id = complete_honestly(study)
    number = study.enrollment(enrollment_id)["certificate_no"]
    assert certificate(study.client, number)["valid"] is True

    no_reason = decide(study.client, auditor, enrollment_id, "reject", "  ")
    assert no_reason.status_code == 422
    rejected = decide(study.client, auditor, enrollment_id, "reject", "抽查发现代学")
    assert rejected.status_code == 200, rejected.get_json()
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "ineligible" and codes(body) == ["rejected"]
    assert reason(body, "rejected")["evidence"]["decision"] == rejected.get_json()["decision"]["id"]
    assert body["subsidy"]["amount_yuan"] == "0.00"
    assert body["certificate_no"] is None
    assert certificate(study.client, number)["valid"] is False

    appeal = study.client.post(
        f"/api/v1/enrollments/{enrollment_id}/appeal",
        json={"message": "是我本人学习的，可以提供更多材料"},
        headers=study.auth,
    )
    assert appeal.status_code == 201
    again = study.client.post(
        f"/api/v1/enrollments/{enrollment_id}/appeal", json={"message": "再次"}, headers=study.auth
    )
    assert again.get_json()["error"]["code"] == "already_appealed"
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "needs_review" and codes(body)[0] == "appealed"
    assert [item["enrollment_id"] for item in queue(study.client, auditor)] == [enrollment_id]

    approved = decide(study.client, auditor, enrollment_id, "approve", "申诉材料核实无误")
    assert approved.status_code == 200
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "eligible" and codes(body)[0] == "approved"
    assert body["certificate_no"] not in (None, number)
    assert certificate(study.client, body["certificate_no"])["valid"] is True
    assert certificate(study.client, number)["valid"] is False


def test_only_auditors_and_admins_reach_the_desk_api(study, client, fresh_app):
    enrollment_id = study.enrol()
    assert client.get("/api/v1/audit/reviews").status_code == 401
    assert client.get("/api/v1/audit/reviews", headers=study.auth).status_code == 403
    refused = decide(client, study.auth, enrollment_id, "approve")
    assert refused.status_code == 403
    make_staff(fresh_app, Role.ADMIN, "admin1")
    admin = bearer(api_token(client, "admin1", "Audit2026ok"))
    assert client.get("/api/v1/audit/reviews", headers=admin).status_code == 200


def test_approval_needs_a_complete_course_and_a_known_decision(study, auditor):
    enrollment_id = study.enrol()
    check = open_session(study)["check"]
    study.fail_check(check["id"], photo("biden_2.jpg"))
    early = decide(study.client, auditor, enrollment_id, "approve")
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "not_complete"
    odd = decide(study.client, auditor, enrollment_id, "maybe")
    assert odd.status_code == 422 and "decision" in odd.get_json()["error"]["fields"]
    assert decide(study.client, auditor, 999999, "reject").status_code == 404


def test_check_image_redirects_to_a_short_lived_link_and_every_view_is_logged(
    study, auditor, fresh_app
):
    study.enrol()
    check = open_session(study)["check"]
    study.fail_check(check["id"], photo("biden_2.jpg"))
    response = study.client.get(f"/api/v1/audit/checks/{check['id']}/image", headers=auditor)
    assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"
    with study.client.get(response.headers["Location"], headers=auditor) as image:
        assert image.status_code == 200 and image.data[:2] == b"\xff\xd8"
        assert image.headers["Cache-Control"] == "no-store"
    assert (
        study.client.get(
            f"/api/v1/audit/checks/{check['id']}/image", headers=study.auth
        ).status_code
        == 403
    )
    assert study.client.get("/api/v1/audit/checks/999999/image", headers=auditor).status_code == 404
    with fresh_app.app_context():
        views = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "evidence.view")
        ).all()
        assert len(views) == 1 and views[0].address == "127.0.0.1"


def test_spot_checks_send_clean_completions_to_an_auditor(study, fresh_app, auditor, standard):
    fresh_app.config["SPOT_CHECK_RATE"] = 1.0
    try:
        enrollment_id = complete_honestly(study)
    finally:
        fresh_app.config["SPOT_CHECK_RATE"] = 0.0
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "needs_review" and codes(body)[0] == "spot_check"
    assert body["certificate_no"] is None
    assert decide(study.client, auditor, enrollment_id, "approve").status_code == 200
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "eligible" and body["certificate_no"]


def test_images_behind_a_decision_are_kept_for_the_retention_period_from_the_decision(
    study, fresh_app
):
    fresh_app.config["EVIDENCE_RETENTION_DAYS"] = 10
    try:
        enrollment_id = study.enrol()
        session = study.start()  # reference and sign-in snapshot: kept 10 days from capture
        fresh_app.config["EVIDENCE_RETENTION_DAYS"] = 100
        watch_honestly(study, session)  # completes: the rules' decision is taken now
    finally:
        fresh_app.config["EVIDENCE_RETENTION_DAYS"] = 3 * 365
    assert study.enrollment(enrollment_id)["subsidy"]["status"] == "eligible"
    with fresh_app.app_context():
        kept = db.session.scalars(sa.select(Evidence.purge_after)).all()
    assert len(kept) == 3  # the reference, the sign-in and the closing check's snapshots
    assert all(moment > utcnow() + timedelta(days=99) for moment in kept)


def test_with_four_eyes_a_second_auditor_must_confirm_a_rejection(
    study, standard, auditor, fresh_app, client, monkeypatch
):
    monkeypatch.setitem(fresh_app.config, "REJECTION_NEEDS_SECOND_AUDITOR", True)
    enrollment_id = complete_honestly(study)
    number = study.enrollment(enrollment_id)["certificate_no"]
    assert decide(client, auditor, enrollment_id, "reject", "疑似代学").status_code == 200
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "needs_review" and codes(body)[0] == "rejection_proposed"
    assert certificate(client, number)["valid"] is True  # nothing refused yet
    alone = decide(client, auditor, enrollment_id, "reject", "我确认")
    assert alone.status_code == 409
    assert alone.get_json()["error"]["code"] == "needs_another_auditor"
    make_staff(fresh_app, Role.AUDITOR, "auditor2")
    second = bearer(api_token(client, "auditor2", "Audit2026ok"))
    assert decide(client, second, enrollment_id, "reject", "复核同意").status_code == 200
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "ineligible"
    assert certificate(client, number)["valid"] is False


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        (
            "post",
            "/api/v1/audit/enrollments/{e}/decision",
            "not json",
            415,
            "unsupported_media_type",
        ),
        ("post", "/api/v1/audit/enrollments/{e}/decision", [], 400, "malformed_json"),
        (
            "post",
            "/api/v1/audit/enrollments/{e}/decision",
            {"decision": 1, "reason": 2},
            422,
            "invalid",
        ),
        (
            "post",
            "/api/v1/audit/enrollments/{e}/decision",
            {"decision": "approve", "reason": "x" * 2001},
            422,
            "invalid",
        ),
        (
            "post",
            "/api/v1/audit/enrollments/{e}/decision",
            {"decision": "approve", "reason": "ok"},
            409,
            "already_eligible",
        ),
        ("post", "/api/v1/audit/checks/{c}/clear", {"reason": "ok"}, 409, "check_not_failed"),
        ("post", "/api/v1/audit/checks/{c}/clear", {"reason": ["ok"]}, 422, "invalid"),
        ("post", "/api/v1/audit/checks/999999/clear", {"reason": "ok"}, 404, "not_found"),
        ("get", "/api/v1/audit/reviews?limit=abc", None, 422, "invalid"),
        ("get", "/api/v1/audit/reviews?limit=0", None, 422, "invalid"),
        ("post", "/api/v1/enrollments/{e}/appeal", {"message": "复核"}, 409, "not_rejected"),
        ("post", "/api/v1/enrollments/{e}/appeal", {"message": None}, 422, "invalid"),
        ("post", "/api/v1/enrollments/999999/appeal", {"message": "复核"}, 404, "not_found"),
    ],
)
@pytest.mark.database("postgresql")  # input checks, alike on both; each takes a whole course
def test_garbage_gets_a_clear_4xx_and_changes_nothing(
    study, standard, auditor, fresh_app, method, path, body, status, code
):
    enrollment_id = complete_honestly(study)  # eligible, its sign-in check passed
    check_id = reason(study.enrollment(enrollment_id), "checks_passed")["evidence"]["checks"][0]
    headers = study.auth if "appeal" in path else auditor
    url = path.format(e=enrollment_id, c=check_id)
    if isinstance(body, str):
        response = study.client.post(url, data=body, headers=headers)
    else:
        response = getattr(study.client, method)(url, json=body, headers=headers)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]
    with fresh_app.app_context():
        actions = db.session.scalars(sa.select(AuditEntry.action)).all()
        assert not [a for a in actions if a.startswith("subsidy.") and a != "subsidy.eligible"]
    assert study.enrollment(enrollment_id)["subsidy"]["status"] == "eligible"
