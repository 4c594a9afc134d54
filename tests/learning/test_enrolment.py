"""Enrolment and opening study sessions: who may, and what they get back."""

from app.courses import service as courses
from app.extensions import db
from tests.conftest import bearer, make_platform
from tests.courses.helpers import add_lesson, create_course


def test_enrol_once_then_409_with_the_existing_id(study):
    response = study.client.post(
        f"/api/v1/courses/{study.course_id}/enrollments", headers=study.auth
    )
    assert response.status_code == 201
    first = response.get_json()["id"]
    again = study.client.post(f"/api/v1/courses/{study.course_id}/enrollments", headers=study.auth)
    assert again.status_code == 409
    assert again.get_json()["id"] == first
    assert again.get_json()["error"]["code"] == "already_enrolled"


def test_session_needs_an_enrolment(study):
    response = study.client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "not_enrolled"


def test_session_start_returns_playlist_and_resume_point(study):
    study.enrol()
    session = study.start()
    study.beat(session, 0)
    study.beat(session, 2, after=2)
    study.beat(session, 4, after=2)
    reply = study.client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth)
    body = reply.get_json()
    assert body["check"]["kind"] == "sign_in"  # every session opens with a face check
    assert body["resume_s"] == 4 and body["furthest_s"] >= 4
    assert "/media/lessons/" in body["playlist_url"] and "sig=" in body["playlist_url"]


def test_unpublished_courses_are_not_open(study, client, fresh_app):
    platform = make_platform(fresh_app, "未发布平台")
    course_id = create_course(client, platform)
    lesson_id = add_lesson(client, platform, course_id)
    assert (
        client.post(f"/api/v1/courses/{course_id}/enrollments", headers=study.auth).status_code
        == 404
    )
    assert (
        client.post(f"/api/v1/lessons/{lesson_id}/sessions", headers=study.auth).status_code == 404
    )
    # A course withdrawn after enrolment closes its lessons too.
    study.enrol()
    with fresh_app.app_context():
        courses.withdraw(courses.get_course(study.course_id))
        db.session.commit()
    assert (
        client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=study.auth).status_code
        == 404
    )


def test_only_trainees_enrol(study, client, fresh_app):
    platform = make_platform(fresh_app, "别的平台")
    response = client.post(
        f"/api/v1/courses/{study.course_id}/enrollments", headers=bearer(platform)
    )
    assert response.status_code == 403


def test_enrolment_pages_show_progress_and_reasons(study, client):
    enrollment_id = study.enrol()
    session = study.start()
    study.beat(session, 0)
    study.beat(session, 2, after=2, hidden=True)
    study.beat(session, 4, after=2, hidden=True)
    from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, sign_in_page

    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    html = client.get(f"/learn/{enrollment_id}").get_data(as_text=True)
    assert "第1课" in html and "后台" in html  # the hidden-page reason, in Chinese
    assert client.get(f"/learn/lessons/{study.lesson_id}").status_code == 200
    assert client.get("/courses").status_code == 200
    assert "低压电工作业" in client.get(f"/courses/{study.course_id}").get_data(as_text=True)
