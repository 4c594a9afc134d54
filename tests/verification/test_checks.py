"""Face enrolment and checks through the API, with the real face model and real photos."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.learning.models import LessonProgress
from app.verification.models import Check, Evidence, IdentityFlag
from tests.conftest import TRAINEE_ID, api_token, bearer, make_trainee, multipart
from tests.study import enrol_face
from tests.verification.photos import photo, variant

SECOND_ID = "440304199512310024"


def upload_face(client, token: str, data: bytes, name: str = "face.jpg"):
    body, content_type = multipart([("image", name, data)])
    return client.put(
        "/api/v1/me/face", data=body, content_type=content_type, headers=bearer(token)
    )


def post_frames(study, check_id: int, frames: list[bytes], field: str = "frames"):
    body, content_type = multipart([(field, f"{n}.jpg", data) for n, data in enumerate(frames)])
    return study.client.post(
        f"/api/v1/checks/{check_id}", data=body, content_type=content_type, headers=study.auth
    )


def evidence_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Evidence)) or 0


def huge_png_header(width: int = 60000, height: int = 60000) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels in a few dozen bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def trainee_token(client, fresh_app):
    make_trainee(fresh_app)
    return api_token(client, TRAINEE_ID, "Study2026ok")


def test_enrolment_accepts_a_clear_photo_and_keeps_it_as_evidence(client, fresh_app, trainee_token):
    response = upload_face(client, trainee_token, photo("obama_1.jpg"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "active" and body["quality"]["face_px"] >= 80
    assert client.get("/api/v1/me/face", headers=bearer(trainee_token)).get_json()["enrolled"]
    assert evidence_count(fresh_app) == 1


def test_enrolment_handles_a_32_bit_rgba_png(client, trainee_token):
    response = upload_face(client, trainee_token, photo("rgba_32bit.png"), "face.png")
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: photo("two_people.jpg"), 422, "multiple_faces"),
        (huge_png_header, 413, "image_too_large"),
        (lambda: huge_png_header(7300, 5400), 413, "image_too_large"),  # 40 MP: never decoded
        (lambda: photo("obama_1.jpg")[:4000], 422, "not_an_image"),  # truncated JPEG
        (lambda: b"GIF89a" + b"\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20, 422, "not_an_image"),
        (
            lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="9"/></svg>',
            422,
            "not_an_image",
        ),
        (lambda: b"\xff\xd8\xff" + b"\x00" * (20 * 1024 * 1024), 413, "image_too_large"),
        (lambda: b"", 422, "not_an_image"),
    ],
)
def test_bad_enrolment_photos_get_a_clear_code_and_nothing_is_stored(
    client, fresh_app, trainee_token, make, status, code
):
    response = upload_face(client, trainee_token, make())
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert evidence_count(fresh_app) == 0
    assert list(Path(fresh_app.config["STORAGE_ROOT"]).rglob("*.jpg")) == []


def test_studying_needs_an_enrolled_face(study_without_face):
    study = study_without_face
    study.enrol()
    response = study.client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "face_not_enrolled"


def test_the_same_face_on_a_second_account_is_flagged_and_that_trainee_waits(
    study, client, fresh_app
):
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000", name="奥巴")
    enrol_face(fresh_app, second, photo("obama_3.jpg"))  # same person as the first trainee
    with fresh_app.app_context():
        flag = db.session.scalar(sa.select(IdentityFlag))
        assert flag.code == "duplicate_identity" and flag.user_id == second
        assert flag.score >= 0.55 and flag.model.startswith("fr_feature-")
    token = api_token(client, SECOND_ID, "Study2026ok")
    client.post(f"/api/v1/courses/{study.course_id}/enrollments", headers=bearer(token))
    blocked = client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=bearer(token))
    assert blocked.status_code == 403
    assert blocked.get_json()["error"]["code"] == "identity_under_review"
    study.enrol()
    study.start()  # the first trainee studies on


def test_sign_in_check_passes_for_the_trainee_and_fails_for_someone_else(study):
    study.enrol()
    session = study.client.post(
        f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
    ).get_json()
    check = session["check"]
    assert check["kind"] == "sign_in" and check["expires_at"]
    first = study.answer(check["id"], photo("biden_1.jpg"))
    assert (first["passed"], first["code"], first["retry"], first["status"]) == (
        False,
        "mismatch",
        True,
        "pending",
    )
    other = study.fail_check(check["id"], photo("biden_1.jpg"))
    assert {key: other[key] for key in ("passed", "code", "retry", "voided_s", "status")} == {
        "passed": False,
        "code": "mismatch",
        "retry": False,
        "voided_s": 0.0,
        "status": "failed",
    }
    assert other["attempts"] == other["max_attempts"] == 3
    assert other["score"] < 0.44
    closed = post_frames(study, check["id"], [variant("obama_2.jpg", 1)], field="image")
    assert closed.status_code == 409 and closed.get_json()["error"]["code"] == "check_closed"


def test_replayed_snapshots_fail_as_replay(study):
    study.enrol()
    study.start()  # passes with variant 1 of obama_2
    for image in (variant("obama_2.jpg", 1), photo("obama_1.jpg")):  # earlier snapshot, reference
        check = study.client.post(
            f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
        ).get_json()["check"]
        assert study.answer(check["id"], image)["code"] == "replay"


def test_no_face_asks_again_and_several_faces_fail(study, tmp_path):
    study.enrol()
    check = study.client.post(
        f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
    ).get_json()["check"]
    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 140, 160)).save(blank, "JPEG")
    again = study.answer(check["id"], blank.getvalue())
    assert again["code"] == "no_face" and again["retry"] is True
    final = study.answer(check["id"], photo("two_people.jpg"))
    assert final["passed"] is False and final["code"] == "multiple_faces"


@pytest.mark.parametrize(
    ("frames", "status", "code"),
    [
        ([huge_png_header(7300, 5400)] * 3, 413, "image_too_large"),  # 40 MP PNG frames
        ([huge_png_header(7300, 5400), b"not a picture"], 413, "image_too_large"),
        ([b"not a picture", b"GIF89a"], 422, "not_an_image"),
    ],
)
def test_an_answer_with_no_usable_frame_is_refused_and_the_check_stays_open(
    study, fresh_app, frames, status, code
):
    study.enrol()
    check = study.client.post(
        f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
    ).get_json()["check"]
    stored = evidence_count(fresh_app)
    response = post_frames(study, check["id"], frames)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert evidence_count(fresh_app) == stored
    with fresh_app.app_context():
        after = db.session.get(Check, check["id"])
        assert (after.status.value, after.attempts) == ("pending", 0)
    assert study.answer(check["id"], variant("obama_2.jpg", 1))["passed"]


def test_a_burst_is_judged_on_its_best_frame(study):
    study.enrol()
    check = study.client.post(
        f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
    ).get_json()["check"]
    from PIL import Image

    dark = io.BytesIO()
    Image.new("RGB", (640, 480), (0, 0, 0)).save(dark, "JPEG")
    response = post_frames(study, check["id"], [dark.getvalue(), variant("obama_2.jpg", 2)])
    assert response.get_json()["passed"] is True


def test_check_answered_by_someone_else_voids_the_time_since_the_last_pass(
    study, fresh_app, checks_every_4s
):
    enrollment_id = study.enrol()
    session = study.start()
    check = study.watch_until_random_check(session)
    held = study.beat(session, 6, after=2).get_json()
    assert held["credited_s"] == 0 and held["reason"] == "check_pending"
    answer = study.fail_check(check["id"], photo("biden_2.jpg"))
    assert answer["passed"] is False and answer["code"] == "mismatch"
    assert answer["voided_s"] == pytest.approx(4.0, abs=0.1)
    body = study.enrollment(enrollment_id)
    assert body["credited_s"] == pytest.approx(4.0, abs=0.1)
    assert body["verified_s"] == 0
    with fresh_app.app_context():
        failed = db.session.scalars(sa.select(Check).where(Check.status == "failed")).all()
        assert [(c.kind.value, c.code) for c in failed] == [("random", "mismatch")]
        assert failed[0].score < failed[0].threshold == 0.44 and failed[
            0
        ].settled_s == pytest.approx(4.0, abs=0.1)
        assert db.session.scalar(sa.select(LessonProgress)).voided_s == pytest.approx(4.0, abs=0.1)
    # Studying goes on; the time from here waits for the next check.
    after = study.beat(session, 6, after=2).get_json()
    assert after["check"] is None and after["credited_s"] == 0  # re-anchored after the pause
    assert study.beat(session, 8, after=2).get_json()["lesson_pending_s"] == 2.0


def test_unanswered_check_fails_as_expired(study, fresh_app):
    fresh_app.config["CHECK_WINDOW_S"] = 0.3
    try:
        study.enrol()
        check = study.client.post(
            f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
        ).get_json()["check"]
        time.sleep(0.5)
        late = post_frames(study, check["id"], [variant("obama_2.jpg", 1)], field="image")
        assert late.status_code == 409
        with fresh_app.app_context():
            expired = db.session.get(Check, check["id"])
            assert (expired.status.value, expired.code) == ("failed", "expired")
    finally:
        fresh_app.config["CHECK_WINDOW_S"] = 60.0


def test_with_liveness_on_a_still_photo_fails(study, fresh_app):
    fresh_app.config["LIVENESS"] = True
    try:
        study.enrol()
        check = study.client.post(
            f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
        ).get_json()["check"]
        assert check["challenge"] in ("blink", "turn_left", "turn_right")
        still = variant("obama_2.jpg", 1)
        response = post_frames(study, check["id"], [still] * 4)
        assert response.get_json()["code"] == "liveness_failed"
        assert response.get_json()["passed"] is False
    finally:
        fresh_app.config["LIVENESS"] = False


def test_staff_clear_a_duplicate_flag_and_the_trainee_studies(study, runner, fresh_app, client):
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000", name="奥巴")
    enrol_face(fresh_app, second, photo("obama_3.jpg"))
    listed = runner.invoke(args=["faces", "flags"])
    flag_id = listed.output.split("\t")[0]
    assert "duplicate_identity" in listed.output
    refused = runner.invoke(
        args=["faces", "resolve", flag_id, "--outcome", "cleared", "--note", " "]
    )
    assert refused.exit_code != 0
    done = runner.invoke(
        args=[
            "faces",
            "resolve",
            flag_id,
            "--outcome",
            "cleared",
            "--note",
            "核对身份证原件，确为两人",
        ]
    )
    assert done.exit_code == 0 and "cleared" in done.output
    token = api_token(client, SECOND_ID, "Study2026ok")
    client.post(f"/api/v1/courses/{study.course_id}/enrollments", headers=bearer(token))
    opened = client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=bearer(token))
    assert opened.status_code == 201


def test_staff_confirm_the_same_person_and_the_second_account_stays_closed(
    study, runner, fresh_app, client
):
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000", name="奥巴")
    enrol_face(fresh_app, second, photo("obama_3.jpg"))
    flag_id = runner.invoke(args=["faces", "flags"]).output.split("\t")[0]
    note = "同一人重复注册"
    done = runner.invoke(
        args=["faces", "resolve", flag_id, "--outcome", "confirmed", "--note", note]
    )
    assert done.exit_code == 0 and "confirmed" in done.output
    token = bearer(api_token(client, SECOND_ID, "Study2026ok"))
    client.post(f"/api/v1/courses/{study.course_id}/enrollments", headers=token)

    opened = client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=token)

    assert opened.status_code == 403
    assert opened.get_json()["error"]["code"] == "identity_duplicate"
    assert client.get("/api/v1/me/face", headers=token).get_json()["closed"] is True
    study.enrol()
    study.start()  # the first account studies on


def test_re_enrolment_after_studying_waits_for_approval(study, runner, fresh_app):
    study.enrol()
    study.start()  # a passed check: from now on a new face needs staff approval
    changed = upload_face(study.client, study.token, photo("biden_1.jpg"))
    assert changed.get_json()["status"] == "pending_approval"
    check = study.client.post(
        f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
    ).get_json()["check"]
    assert study.answer(check["id"], variant("obama_2.jpg", 4))["passed"]  # old face still rules
    reference_id = runner.invoke(args=["faces", "pending"]).output.split("\t")[0]
    approved = runner.invoke(args=["faces", "approve", reference_id])
    assert approved.exit_code == 0 and "active" in approved.output
    check = study.client.post(
        f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth
    ).get_json()["check"]
    assert study.answer(check["id"], photo("biden_2.jpg"))["passed"]
