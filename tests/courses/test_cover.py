"""PUT /api/v1/courses/{id}/cover: the image decides, and bad input gets its own code."""

import pytest

from tests.conftest import bearer, make_platform
from tests.courses.helpers import create_course
from tests.verification.photos import photo


def put_cover(client, token, course_id, data):
    return client.put(
        f"/api/v1/courses/{course_id}/cover",
        data=data,
        headers={**bearer(token), "Content-Type": "application/octet-stream"},
    )


def test_jpeg_cover_is_stored(client, fresh_app):
    token = make_platform(fresh_app)
    course_id = create_course(client, token)
    response = put_cover(client, token, course_id, photo("obama_1.jpg"))
    assert response.status_code == 200
    assert response.get_json() == {"id": course_id, "cover": True}


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"just some text", 422, "not_an_image"),
        (b"", 422, "not_an_image"),
        (b"GIF89a" + b"\x00" * 32, 422, "not_an_image"),
        (b"\xff\xd8\xff" + b"\x00" * (6 * 1024 * 1024), 413, "too_large"),
    ],
)
def test_bad_cover_gets_a_clear_code(client, fresh_app, data, status, code):
    token = make_platform(fresh_app)
    course_id = create_course(client, token)
    response = put_cover(client, token, course_id, data)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_cover_of_a_locked_or_foreign_course_is_refused(client, fresh_app):
    mine = make_platform(fresh_app, "甲平台")
    other = make_platform(fresh_app, "乙平台")
    course_id = create_course(client, mine)
    assert put_cover(client, other, course_id, photo("obama_1.jpg")).status_code == 404
