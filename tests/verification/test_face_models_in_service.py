"""Face models in the service: moving references enrolled under dlib to the new model while
trainees go on studying, and the two kinds of duplicate-face candidates."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.identity.models import Role, User
from app.jobs.service import run_pending
from app.media.service import storage
from app.verification.models import Check, Evidence, FaceReference, IdentityFlag
from media_pipeline import face_models
from tests.conftest import api_token, bearer, make_trainee
from tests.study import enrol_face
from tests.verification.photos import photo
from tests.verification.test_checks import SECOND_ID

VENDORED = face_models.load("default").name


def trainee_id(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(User.id).where(User.role == Role.TRAINEE))


def latest_check(app) -> Check:
    with app.app_context():
        return db.session.scalar(sa.select(Check).order_by(Check.id.desc()).limit(1))


def reference_models(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(FaceReference.model).order_by(FaceReference.id)))


def test_dlib_references_move_to_the_new_model_while_the_trainee_studies(
    study_without_face, fresh_app, runner, monkeypatch
):
    study = study_without_face
    monkeypatch.setitem(fresh_app.config, "FACE_MODEL", "dlib")
    enrol_face(fresh_app, trainee_id(fresh_app), photo("obama_1.jpg"))
    assert reference_models(fresh_app) == ["dlib"]

    monkeypatch.setitem(fresh_app.config, "FACE_MODEL", "default")  # the upgrade
    study.enrol()
    study.start()  # judged by the model that encoded the reference
    before = latest_check(fresh_app)
    assert (before.model, before.threshold, before.status.value) == ("dlib", 0.5, "passed")

    result = runner.invoke(args=["faces", "reencode", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "1 reference(s) to re-encode with fr_feature-" in result.output
    assert "re-encoded 1/1" in result.output
    assert reference_models(fresh_app) == [VENDORED]

    study.start()
    after = latest_check(fresh_app)
    assert (after.model, after.threshold, after.status.value) == (VENDORED, 0.44, "passed")
    again = runner.invoke(args=["faces", "reencode"])
    assert again.exit_code == 0 and "0 reference(s) to re-encode" in again.output


def test_the_reencode_job_converges_and_a_lost_photo_is_reported(fresh_app, runner, monkeypatch):
    monkeypatch.setitem(fresh_app.config, "FACE_MODEL", "dlib")
    first = make_trainee(fresh_app)
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000")
    enrol_face(fresh_app, first, photo("obama_1.jpg"))
    enrol_face(fresh_app, second, photo("biden_1.jpg"))
    monkeypatch.setitem(fresh_app.config, "FACE_MODEL", "default")
    with fresh_app.app_context():
        lost = db.session.scalar(
            sa.select(Evidence)
            .join(FaceReference, FaceReference.evidence_id == Evidence.id)
            .where(FaceReference.user_id == second)
        )
        storage().delete(lost.key)  # the photo is gone from storage

    queued = runner.invoke(args=["faces", "reencode", "--in-background"])
    assert queued.exit_code == 0 and "reencode_faces" in queued.output
    with fresh_app.app_context():
        assert run_pending() == 1
    assert reference_models(fresh_app) == [VENDORED, "dlib"]

    result = runner.invoke(args=["faces", "reencode"])
    assert result.exit_code == 1
    assert "reference_gone" in result.stderr
    assert "done: 1 reference(s) left on another model" in result.stdout


def test_a_possible_duplicate_is_queued_but_does_not_bar_study(
    study, client, fresh_app, monkeypatch
):
    # Obama's two photos score about 0.6: under this duplicate threshold, over the match one.
    monkeypatch.setitem(fresh_app.config, "FACE_DUPLICATE_THRESHOLD", 0.99)
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000", name="奥巴")
    enrol_face(fresh_app, second, photo("obama_3.jpg"))
    with fresh_app.app_context():
        flag = db.session.scalar(sa.select(IdentityFlag))
        assert (flag.code, flag.user_id, flag.model) == ("possible_duplicate", second, VENDORED)
        assert 0.44 <= flag.score < 0.99
    token = api_token(client, SECOND_ID, "Study2026ok")
    client.post(f"/api/v1/courses/{study.course_id}/enrollments", headers=bearer(token))
    opened = client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=bearer(token))
    assert opened.status_code == 201, opened.get_json()
    face = client.get("/api/v1/me/face", headers=bearer(token)).get_json()
    assert face["under_review"] is False
