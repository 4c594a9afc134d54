"""A published course with a ready lesson, a trainee, and a clock the test moves."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.courses import service as courses
from app.extensions import db
from app.jobs.service import run_pending
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    make_platform,
    make_trainee,
)
from tests.courses.helpers import CLIP, add_lesson, create_course, upload_whole


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Study:
    client: object
    token: str
    course_id: int
    lesson_id: int
    clock: FakeClock

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)

    def enrol(self) -> int:
        response = self.client.post(
            f"/api/v1/courses/{self.course_id}/enrollments", headers=self.auth
        )
        assert response.status_code in (201, 409)
        return response.get_json()["id"]

    def start(self) -> int:
        response = self.client.post(f"/api/v1/lessons/{self.lesson_id}/sessions", headers=self.auth)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def beat(self, session_id: int, position: float, *, after: float = 0.0, **extra):
        self.clock.advance(after)
        return self.client.post(
            f"/api/v1/sessions/{session_id}/heartbeats",
            json={"position_s": position, **extra},
            headers=self.auth,
        )

    def enrollment(self, enrollment_id: int) -> dict:
        return self.client.get(f"/api/v1/enrollments/{enrollment_id}", headers=self.auth).get_json()


def publish_course(client, app, lessons: int = 1) -> tuple[int, list[int]]:
    platform = make_platform(app)
    course_id = create_course(client, platform)
    lesson_ids = []
    for number in range(lessons):
        lesson_id = add_lesson(client, platform, course_id, f"第{number + 1}课")
        upload_whole(client, platform, lesson_id, CLIP.read_bytes())
        lesson_ids.append(lesson_id)
    with app.app_context():
        run_pending()
        course = courses.get_course(course_id)
        courses.submit(course)
        courses.publish(course)
        db.session.commit()
    return course_id, lesson_ids


@pytest.fixture
def study(client, fresh_app):
    """HEARTBEAT_S is 2 s here, so the 10 s clip is five heartbeats long."""
    clock = FakeClock()
    fresh_app.extensions["veriskill.clock"] = clock
    fresh_app.config["HEARTBEAT_S"] = 2.0
    course_id, lessons = publish_course(client, fresh_app)
    make_trainee(fresh_app)
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    yield Study(client, token, course_id, lessons[0], clock)
    fresh_app.config["HEARTBEAT_S"] = 15.0
    import time

    fresh_app.extensions["veriskill.clock"] = time.time
