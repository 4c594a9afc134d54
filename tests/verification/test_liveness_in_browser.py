"""Liveness in a real browser: a moving face passes its challenge, a still photo does not.

Chromium's fake camera plays a y4m. A real video of a real person (the Hamilton clip, in which
Lin-Manuel Miranda turns his head to his right) answers a `turn_right` check with LIVENESS on;
a still photo of the same person, however it is zoomed, fails it as `liveness_failed`.
"""

from __future__ import annotations

import subprocess

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.verification import service
from app.verification.models import Check
from media_pipeline import video
from tests.browser import PHONE, live_server
from tests.learning.test_player_in_browser import (
    browser_page,
    camera_video,
    seed_demo_with_face,
    sign_in_and_open_first_lesson,
)
from tests.verification.photos import FACES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIP = FACES.parent / "media" / "short_hamilton_clip.mp4"
# At 5 frames a second, from frame 3 of the clip: the player shows the challenge and counts
# down PROMPT_LEAD_S (3 s, 15 frames) before its 2 s burst, which then sees frames 18 to 28,
# where he turns to his right, facing us.
FIRST_FRAME, LAST_FRAME = 3, 33


@pytest.fixture(scope="module")
def turning_camera(tmp_path_factory):
    path = tmp_path_factory.mktemp("camera") / "turning.y4m"
    subprocess.run(
        [
            video.ffmpeg_path(),
            "-v",
            "error",
            "-y",
            "-i",
            str(CLIP),
            "-an",
            "-vf",
            f"fps=5,select='between(n,{FIRST_FRAME},{LAST_FRAME})',setpts=N/5/TB,format=yuv420p",
            "-r",
            "5",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path


@pytest.fixture(scope="module")
def still_camera(tmp_path_factory):
    path = tmp_path_factory.mktemp("camera") / "still.y4m"
    camera_video("lin_manuel_miranda_1.jpg", 0, path)
    return path


@pytest.fixture
def turn_right_checks(database_url, fresh_app, runner, monkeypatch):
    """The demo trainee, enrolled with Lin-Manuel Miranda's photo; every check asks for a turn
    to the right, with liveness on."""
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser run is enough; it runs on SQLite")
    seed_demo_with_face(fresh_app, runner, "lin_manuel_miranda_1.jpg")
    monkeypatch.setitem(fresh_app.config, "LIVENESS", True)
    monkeypatch.setattr(service, "CHALLENGES", ("turn_right",))
    return fresh_app


def sign_in_check(app) -> Check:
    with app.app_context():
        check = db.session.scalars(sa.select(Check).order_by(Check.id)).first()
        db.session.expunge(check)
        return check


def test_a_real_head_turn_passes_the_liveness_challenge(turn_right_checks, turning_camera):
    app = turn_right_checks
    with live_server(app) as base, browser_page(turning_camera, PHONE) as page:
        sign_in_and_open_first_lesson(page, base)
        page.wait_for_selector("#check", state="visible", timeout=20_000)
        page.wait_for_function(  # the challenge is shown with a count-down before the burst
            "() => document.getElementById('check-status').textContent.includes('秒后开始拍照')",
            timeout=20_000,
        )
        page.wait_for_selector("#check", state="hidden", timeout=40_000)
    check = sign_in_check(app)
    assert (check.challenge, check.status.value, check.attempts) == ("turn_right", "passed", 1)


def test_a_still_photo_of_the_trainee_fails_the_liveness_challenge(turn_right_checks, still_camera):
    app = turn_right_checks
    with live_server(app) as base, browser_page(still_camera, PHONE) as page:
        sign_in_and_open_first_lesson(page, base)
        page.wait_for_selector("#check", state="visible", timeout=20_000)
        # Three tries, each shown with the tries left; the last result counts.
        page.wait_for_selector("#check-continue:not([hidden])", timeout=90_000)
        assert "未通过" in page.locator("#check-status").inner_text()
    check = sign_in_check(app)
    assert (check.challenge, check.status.value, check.code, check.attempts) == (
        "turn_right",
        "failed",
        "liveness_failed",
        service.CHECK_MAX_ATTEMPTS,
    )
