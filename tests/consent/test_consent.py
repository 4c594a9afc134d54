"""Consent to face processing: the API contract, the gate on every face processing, withdrawal
erasing the face data (but the evidence behind money already decided), and the pages."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.consent import texts
from app.consent.models import Consent
from app.extensions import db
from app.jobs.service import run_pending
from app.subsidy.models import Action, Decision
from app.verification.models import CheckAnswer, Evidence, FaceReference
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    count_rows,
    csrf_from,
    give_consent,
    make_trainee,
    multipart,
    sign_in_page,
)
from tests.study import enrol_face
from tests.verification.photos import photo, variant

CURRENT = texts.CURRENT[texts.FACE]


def upload_face(client, token: str, data: bytes):
    body, content_type = multipart([("image", "face.jpg", data)])
    return client.put(
        "/api/v1/me/face", data=body, content_type=content_type, headers=bearer(token)
    )


@pytest.fixture
def unconsented(client, fresh_app) -> tuple[int, str]:
    user_id = make_trainee(fresh_app, consent=False)
    return user_id, api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)))


def stored_images(app) -> list[Path]:
    root = Path(app.config["STORAGE_ROOT"]) / "faces"
    return [path for path in root.rglob("*") if path.is_file()]


def test_a_new_trainee_is_asked_for_consent_with_the_full_text(client, fresh_app, unconsented):
    _, token = unconsented
    response = client.get("/api/v1/me/consent", headers=bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["given"] == []
    [required] = body["required"]
    assert required["purpose"] == "face_verification" and required["version"] == CURRENT
    text = required["text"]
    # What, why, who, how long (the configured retention), how to withdraw.
    assert str(fresh_app.config["EVIDENCE_RETENTION_DAYS"]) in text
    assert len(text.split("\n\n")) == 1 + 2 * len(texts.FACE_SECTIONS) + 5


def test_enrolling_a_face_without_consent_is_refused_and_stores_nothing(
    client, fresh_app, unconsented
):
    _, token = unconsented
    response = upload_face(client, token, photo("obama_1.jpg"))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "consent_required"
    assert count_rows(fresh_app, Evidence) == 0
    assert count_rows(fresh_app, FaceReference) == 0
    assert stored_images(fresh_app) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"purpose": "marketing", "version": CURRENT}, "unknown_purpose"),
        ({"purpose": "face_verification", "version": "face-2020-01"}, "consent_version_outdated"),
        ({"purpose": "face_verification"}, "consent_version_outdated"),
    ],
)
def test_a_wrong_purpose_or_version_is_refused_with_a_code(
    client, fresh_app, unconsented, body, code
):
    _, token = unconsented
    response = client.post("/api/v1/me/consent", json=body, headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code
    assert count_rows(fresh_app, Consent) == 0


def test_consent_is_recorded_once_then_enrolment_works(client, fresh_app, unconsented):
    _, token = unconsented
    body = {"purpose": "face_verification", "version": CURRENT}
    first = client.post("/api/v1/me/consent", json=body, headers=bearer(token))
    assert first.status_code == 201, first.get_json()
    again = client.post("/api/v1/me/consent", json=body, headers=bearer(token))
    assert again.status_code == 200
    assert again.get_json()["given_at"] == first.get_json()["given_at"]
    assert count_rows(fresh_app, Consent) == 1
    status = client.get("/api/v1/me/consent", headers=bearer(token)).get_json()
    assert status["required"] == []
    assert [(g["purpose"], g["version"]) for g in status["given"]] == [
        ("face_verification", CURRENT)
    ]
    assert audit_actions(fresh_app).count("consent.give") == 1
    assert upload_face(client, token, photo("obama_1.jpg")).status_code == 200


def test_staff_cannot_consent(client, fresh_app):
    from tests.conftest import make_staff

    make_staff(fresh_app)
    token = api_token(client, "auditor1", "Audit2026ok")
    response = client.get("/api/v1/me/consent", headers=bearer(token))
    assert response.status_code == 403


def test_withdrawal_deletes_the_face_and_stops_face_processing(client, fresh_app):
    user_id = make_trainee(fresh_app)
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    assert upload_face(client, token, photo("obama_1.jpg")).status_code == 200
    assert len(stored_images(fresh_app)) == 1

    response = client.delete("/api/v1/me/consent/face_verification", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["was_given"] is True and body["withdrawn_at"]
    assert body["deleted"] == {"reference_faces": 1, "images": 1}
    assert body["kept"] == {"images": 0}
    assert len(body["meaning"]) >= 4
    assert stored_images(fresh_app) == []
    assert count_rows(fresh_app, FaceReference) == 0
    with fresh_app.app_context():
        evidence = db.session.scalars(sa.select(Evidence)).one()
        assert evidence.key is None and evidence.purged_at is not None
        consent = db.session.scalars(sa.select(Consent)).one()
        assert consent.ended_because == "withdrawn" and consent.ended_at is not None
    assert "consent.withdraw" in audit_actions(fresh_app)

    status = client.get("/api/v1/me/consent", headers=bearer(token)).get_json()
    assert status["given"] == [] and status["required"][0]["version"] == CURRENT
    refused = upload_face(client, token, photo("obama_1.jpg"))
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "consent_required"
    # Consenting again lets the trainee enrol again.
    give_consent(fresh_app, user_id)
    assert upload_face(client, token, photo("obama_1.jpg")).status_code == 200


def test_withdrawal_of_an_unknown_purpose_is_refused(client, unconsented):
    _, token = unconsented
    response = client.delete("/api/v1/me/consent/marketing", headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unknown_purpose"


def test_a_study_session_needs_consent(study, fresh_app):
    """Withdrawn mid-course: the next lesson is refused with `consent_required`."""
    study.enrol()
    study.start()
    study.client.delete("/api/v1/me/consent/face_verification", headers=study.auth)
    response = study.client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "consent_required"


def test_images_behind_a_decided_enrolment_are_kept_after_withdrawal(study, fresh_app):
    enrollment_id = study.enrol()
    study.start()  # a passed sign-in check: its snapshot is evidence of that enrolment
    with fresh_app.app_context():
        snapshots = db.session.scalar(
            sa.select(sa.func.count()).select_from(Evidence).where(Evidence.check_id.is_not(None))
        )
        assert snapshots >= 1
        db.session.add(Decision(enrollment_id=enrollment_id, action=Action.APPROVE, reason="paid"))
        db.session.commit()
    body = study.client.delete(
        "/api/v1/me/consent/face_verification", headers=study.auth
    ).get_json()
    # The reference photo and the snapshots back money already decided: kept until their
    # retention date. The encoding (the reference row) is gone all the same.
    assert body["kept"] == {"images": snapshots + 1}
    assert body["deleted"] == {"reference_faces": 1, "images": 0}
    assert count_rows(fresh_app, FaceReference) == 0
    with fresh_app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).select_from(Evidence).where(Evidence.key.is_not(None))
            )
            == snapshots + 1
        )
    assert len(stored_images(fresh_app)) == snapshots + 1


def test_a_worker_refuses_an_answer_queued_before_the_withdrawal(study, fresh_app, monkeypatch):
    monkeypatch.setitem(fresh_app.config, "CHECKS_IN_WORKER", True)
    study.enrol()
    response = study.client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth)
    check_id = response.get_json()["check"]["id"]
    body, content_type = multipart([("frames", "0.jpg", variant("obama_2.jpg", 1))])
    queued = study.client.post(
        f"/api/v1/checks/{check_id}", data=body, content_type=content_type, headers=study.auth
    )
    assert queued.status_code == 202
    study.client.delete("/api/v1/me/consent/face_verification", headers=study.auth)
    with fresh_app.app_context():
        assert run_pending() == 1
        answer = db.session.scalars(sa.select(CheckAnswer)).one()
        assert answer.code == "consent_required" and answer.passed is False
        # Nothing of the answer was kept as evidence: the face was never processed.
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Evidence)
                .where(Evidence.check_id == check_id)
            )
            == 0
        )


# --- pages ---------------------------------------------------------------------------------


def test_the_face_page_sends_a_trainee_without_consent_to_the_consent_page(client, fresh_app):
    make_trainee(fresh_app, consent=False)
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    response = client.get("/me/face")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/me/consent")
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'type="checkbox"' in html and CURRENT in html


def test_the_consent_form_needs_the_box_ticked(client, fresh_app):
    make_trainee(fresh_app, consent=False)
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    token = csrf_from(client.get("/me/consent").get_data(as_text=True))
    refused = client.post("/me/consent", data={"csrf_token": token, "version": CURRENT})
    assert refused.status_code == 422
    assert count_rows(fresh_app, Consent) == 0
    agreed = client.post(
        "/me/consent",
        data={"csrf_token": token, "version": CURRENT, "agree": "yes", "next": "/me/face"},
    )
    assert agreed.status_code == 302 and agreed.headers["Location"] == "/me/face"
    assert count_rows(fresh_app, Consent) == 1
    assert client.get("/me/face").status_code == 200


def test_withdrawing_on_the_page_asks_first_then_deletes(client, fresh_app):
    user_id = make_trainee(fresh_app)
    enrol_face(fresh_app, user_id, photo("obama_1.jpg"))
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    confirm = client.get("/me/consent/withdraw")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "<li>" in html
    assert count_rows(fresh_app, FaceReference) == 1  # asking deletes nothing
    token = csrf_from(html)
    done = client.post("/me/consent/withdraw", data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"] == "/me/consent"
    assert count_rows(fresh_app, FaceReference) == 0
    assert stored_images(fresh_app) == []


def test_the_privacy_notice_is_public_and_states_the_retention(client, fresh_app):
    response = client.get("/privacy")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert str(fresh_app.config["EVIDENCE_RETENTION_DAYS"]) in html
    assert 'id="offline"' in html
