"""Study fixtures: a published course with a ready lesson, a trainee, a clock the test moves."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.courses import service as courses
from app.courses.models import Course, Lesson
from app.extensions import db
from app.identity.models import User
from app.jobs.service import run_pending
from app.learning.models import Enrollment, StudySession
from app.platforms.models import Platform
from app.verification import service as verification
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    make_platform,
    make_trainee,
    multipart,
)
from tests.courses.helpers import CLIP, add_lesson, create_course, upload_whole
from tests.made_once import reused_media
from tests.verification.photos import photo, variant


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
    checks_answered: int = 0

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
        """Open a session and pass its sign-in check with a fresh photo of the trainee."""
        response = self.client.post(f"/api/v1/lessons/{self.lesson_id}/sessions", headers=self.auth)
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        self.checks_answered += 1
        answer = self.answer(body["check"]["id"], variant("obama_2.jpg", self.checks_answered))
        assert answer["passed"], answer
        return body["id"]

    def pass_check(self, check: dict) -> dict:
        """Answer a check with a fresh picture of the trainee; it passes."""
        self.checks_answered += 1
        answer = self.answer(check["id"], variant("obama_2.jpg", self.checks_answered))
        assert answer["passed"], answer
        return answer

    def fail_check(self, check_id: int, image: bytes) -> dict:
        """Answer a check with ``image`` until it has no tries left; the last answer."""
        while True:
            answer = self.answer(check_id, image)
            if not answer["retry"]:
                return answer

    def answer(self, check_id: int, image: bytes) -> dict:
        body, content_type = multipart([("image", "snap.jpg", image)])
        response = self.client.post(
            f"/api/v1/checks/{check_id}", data=body, content_type=content_type, headers=self.auth
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def beat(self, session_id: int, position: float, *, after: float = 0.0, **extra):
        self.clock.advance(after)
        return self.client.post(
            f"/api/v1/sessions/{session_id}/heartbeats",
            json={"position_s": position, **extra},
            headers=self.auth,
        )

    def watch(self, session_id: int, start: float = 0.0, end: float = 10.0, step: float = 2.0):
        """Watch honestly from ``start`` to ``end``; a closing check at the end is passed, and
        the state after it returned (a paused heartbeat at the end)."""
        position = start
        last = self.beat(session_id, position)
        while position < end:
            position = min(end, position + step)
            last = self.beat(session_id, position, after=step)
            assert last.status_code == 200, last.get_json()
        check = last.get_json()["check"]
        if check is not None and check["kind"] == "closing":
            self.pass_check(check)
            last = self.beat(session_id, end, playing=False)
        return last.get_json()

    def watch_until_random_check(self, session_id: int) -> dict:
        """Watch from the start until the random check `checks_every_4s` makes due at 4 s."""
        self.beat(session_id, 0)
        self.beat(session_id, 2, after=2)
        check = self.beat(session_id, 4, after=2).get_json()["check"]
        assert check is not None and check["kind"] == "random", check
        return check

    def enrollment(self, enrollment_id: int) -> dict:
        return self.client.get(f"/api/v1/enrollments/{enrollment_id}", headers=self.auth).get_json()


def enrol_face(app, user_id: int, image: bytes) -> None:
    with app.test_request_context():
        verification.enrol_face(db.session.get(User, user_id), image)
        db.session.commit()


def publish_course(client, app, lessons: int = 1) -> tuple[int, list[int]]:
    """A published course of ``lessons`` copies of the clip, through the real upload path and
    pipeline; the clip's ffmpeg output is made once per session (tests/made_once.py)."""
    platform = make_platform(app)
    course_id = create_course(client, platform)
    lesson_ids = []
    for number in range(lessons):
        lesson_id = add_lesson(client, platform, course_id, f"第{number + 1}课")
        upload_whole(client, platform, lesson_id, CLIP.read_bytes())
        lesson_ids.append(lesson_id)
    with app.app_context(), reused_media():
        run_pending()
    with app.app_context():
        course = courses.get_course(course_id)
        courses.submit(course)
        courses.publish(course)
        db.session.commit()
    return course_id, lesson_ids


def _study(client, app, *, face: bool):
    """HEARTBEAT_S is 2 s here, so the 10 s clip is five heartbeats long."""
    clock = FakeClock()
    app.extensions["veriskill.clock"] = clock
    app.config["HEARTBEAT_S"] = 2.0
    course_id, lessons = publish_course(client, app)
    trainee = make_trainee(app)
    if face:
        with reused_media():  # the reference's encoding is made once per session
            enrol_face(app, trainee, photo("obama_1.jpg"))
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    yield Study(client, token, course_id, lessons[0], clock)
    app.config["HEARTBEAT_S"] = 15.0
    app.extensions["veriskill.clock"] = time.time


@pytest.fixture
def study(client, fresh_app):
    """A trainee with an enrolled face (obama_1) and a published one-lesson course."""
    yield from _study(client, fresh_app, face=True)


@pytest.fixture
def checks_every_4s(fresh_app, monkeypatch):
    """Random checks after exactly 4 s of credited study (drawn when a check passes)."""
    monkeypatch.setitem(fresh_app.config, "CHECK_INTERVAL_MIN_S", 4.0)
    monkeypatch.setitem(fresh_app.config, "CHECK_INTERVAL_MAX_S", 4.0)


@pytest.fixture
def study_without_face(client, fresh_app):
    yield from _study(client, fresh_app, face=False)


def study_session(app, user_id: int) -> int:
    """Rows a check hangs on: a course, a lesson, an enrolment, a session (no video needed)."""
    make_platform(app, f"平台{user_id}")
    with app.app_context():
        platform = db.session.scalar(sa.select(Platform).where(Platform.name == f"平台{user_id}"))
        course = Course(
            platform_id=platform.id,
            occupation_code="6-31-01-03",
            title="低压电工作业",
            hours=Decimal("16"),
        )
        course.lessons.append(Lesson(position=1, title="第一课"))
        db.session.add(course)
        db.session.flush()
        enrollment = Enrollment(trainee_id=user_id, course_id=course.id)
        db.session.add(enrollment)
        db.session.flush()
        session = StudySession(
            enrollment_id=enrollment.id, lesson_id=course.lessons[0].id, trainee_id=user_id
        )
        db.session.add(session)
        db.session.commit()
        return session.id
