"""The steady learner shared by the heartbeat-cost and overload tests."""

from __future__ import annotations

import time

import pytest

from app.extensions import db
from app.learning.models import StudySession
from tests.study import FakeClock
from tests.study.test_workflow_under_load import (
    learners,
    open_signed_in_session,
    published_lesson,
)


class Steady:
    """A learner whose sign-in check passed, two heartbeats in: the next one is credited."""

    def __init__(self, app) -> None:
        self.app = app
        self.clock = FakeClock()
        app.extensions["veriskill.clock"] = self.clock
        lesson_id = published_lesson(app)
        (self.learner,) = learners(app, lesson_id, 1, first=0)
        open_signed_in_session(app, self.learner, lesson_id)
        self.client = app.test_client()
        self.url = f"/api/v1/sessions/{self.learner.session_id}/heartbeats"
        self.position = 0.0
        self.seq = 0
        assert self.beat(after=0.0).status_code == 200
        assert self.beat().get_json()["credited_s"] == 15.0

    def beat(
        self, after: float = 15.0, headers: dict[str, str] | None = None, playing: bool = True
    ):
        """The player's next heartbeat, ``after`` seconds later, having played them or not."""
        self.clock.advance(after)
        self.position += after if playing else 0.0
        self.seq += 1
        return self.client.post(
            self.url,
            json={"position_s": self.position, "seq": self.seq, "playing": playing},
            headers={"Authorization": f"Bearer {self.learner.token}", **(headers or {})},
        )

    def session(self) -> StudySession:
        return db.session.get(StudySession, self.learner.session_id)


@pytest.fixture
def steady(fresh_app):
    try:
        yield Steady(fresh_app)
    finally:
        fresh_app.extensions["veriskill.clock"] = time.time
