"""Courses and lessons through the platform API, and the review workflow."""

import pytest

from app.identity.models import Role
from app.jobs.service import run_pending
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    make_platform,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.courses.helpers import CLIP, add_lesson, create_course, upload_whole


def test_platform_creates_course_in_draft(client, fresh_app):
    token = make_platform(fresh_app)
    course_id = create_course(client, token, description="国家职业技能标准")
    body = client.get(f"/api/v1/courses/{course_id}", headers=bearer(token)).get_json()
    assert body["status"] == "draft"
    assert body["level"] == "junior" and body["level_name"] == "初级"
    assert body["occupation_name"] == "电工"
    assert body["hours"] == 16.0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"occupation_code": "9-99-99-99"}, "occupation_code"),
        ({"occupation_code": "6-31"}, "occupation_code"),  # a group, not an occupation
        ({"hours": 0}, "hours"),
        ({"hours": "many"}, "hours"),
        ({"hours": True}, "hours"),
        ({"level": "大师"}, "level"),
        ({"title": ""}, "title"),
        ({"title": "课" * 201}, "title"),
    ],
)
def test_bad_course_fields_are_422(client, fresh_app, changes, field):
    token = make_platform(fresh_app)
    body = {"occupation_code": "6-31-01-03", "title": "低压电工", "hours": 8, **changes}
    response = client.post("/api/v1/courses", json=body, headers=bearer(token))
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_api_needs_a_platform_token(client, fresh_app):
    assert client.post("/api/v1/courses", json={}).status_code == 401
    make_trainee(fresh_app)
    trainee = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    assert client.post("/api/v1/courses", json={}, headers=bearer(trainee)).status_code == 403


def test_other_platforms_course_is_404(client, fresh_app):
    mine = make_platform(fresh_app, "甲平台")
    theirs = make_platform(fresh_app, "乙平台")
    course_id = create_course(client, mine)
    lesson_id = add_lesson(client, mine, course_id)
    for url in (
        f"/api/v1/courses/{course_id}",
        f"/api/v1/lessons/{lesson_id}",
        f"/api/v1/lessons/{lesson_id}/upload",
    ):
        assert client.get(url, headers=bearer(theirs)).status_code == 404
    assert (
        client.post(
            f"/api/v1/courses/{course_id}/lessons", json={"title": "x"}, headers=bearer(theirs)
        ).status_code
        == 404
    )


def test_lessons_keep_order_and_can_be_inserted(client, fresh_app):
    token = make_platform(fresh_app)
    course_id = create_course(client, token)
    first = add_lesson(client, token, course_id, "一")
    third = add_lesson(client, token, course_id, "三")
    response = client.post(
        f"/api/v1/courses/{course_id}/lessons",
        json={"title": "二", "position": 2},
        headers=bearer(token),
    )
    assert response.status_code == 201
    lessons = client.get(f"/api/v1/courses/{course_id}", headers=bearer(token)).get_json()[
        "lessons"
    ]
    assert [(lesson["title"], lesson["position"]) for lesson in lessons] == [
        ("一", 1),
        ("二", 2),
        ("三", 3),
    ]
    assert lessons[0]["id"] == first and lessons[2]["id"] == third
    bad = client.post(
        f"/api/v1/courses/{course_id}/lessons",
        json={"title": "x", "position": 9},
        headers=bearer(token),
    )
    assert bad.status_code == 422


def test_submit_needs_ready_lessons_then_review_decides(client, runner, fresh_app):
    token = make_platform(fresh_app)
    course_id = create_course(client, token)
    empty = client.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    assert empty.status_code == 409 and empty.get_json()["error"]["code"] == "no_lessons"
    lesson_id = add_lesson(client, token, course_id)
    early = client.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    assert early.get_json()["error"]["code"] == "lessons_not_ready"
    assert early.get_json()["error"]["lesson_ids"] == [lesson_id]

    upload_whole(client, token, lesson_id, CLIP.read_bytes())
    with fresh_app.app_context():
        assert run_pending() == 1
    submitted = client.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    assert submitted.get_json()["status"] == "in_review"
    locked = client.post(
        f"/api/v1/courses/{course_id}/lessons", json={"title": "晚了"}, headers=bearer(token)
    )
    assert locked.status_code == 409 and locked.get_json()["error"]["code"] == "course_locked"

    refused = runner.invoke(args=["courses", "reject", str(course_id), "--reason", "画面模糊"])
    assert refused.exit_code == 0 and "rejected" in refused.output
    course = client.get(f"/api/v1/courses/{course_id}", headers=bearer(token)).get_json()
    assert course["status"] == "rejected" and course["reject_reason"] == "画面模糊"
    client.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    published = runner.invoke(args=["courses", "publish", str(course_id)])
    assert published.exit_code == 0 and "published" in published.output
    again = runner.invoke(args=["courses", "publish", str(course_id)])
    assert again.exit_code != 0


def test_admin_review_page_publishes(client, fresh_app):
    token = make_platform(fresh_app)
    course_id = create_course(client, token)
    lesson_id = add_lesson(client, token, course_id)
    upload_whole(client, token, lesson_id, CLIP.read_bytes())
    with fresh_app.app_context():
        run_pending()
    client.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    listing = client.get("/admin/courses?status=in_review").get_data(as_text=True)
    assert "低压电工作业" in listing
    page = client.get(f"/admin/courses/{course_id}").get_data(as_text=True)
    assert "360p" in page and 'value="100.0"' in page
    from tests.conftest import csrf_from

    empty_reason = client.post(
        f"/admin/courses/{course_id}/decision",
        data={"action": "reject", "reason": " ", "csrf_token": csrf_from(page)},
    )
    assert empty_reason.status_code == 302
    client.post(
        f"/admin/courses/{course_id}/decision",
        data={"action": "publish", "csrf_token": csrf_from(page)},
    )
    course = client.get(f"/api/v1/courses/{course_id}", headers=bearer(token)).get_json()
    assert course["status"] == "published"
