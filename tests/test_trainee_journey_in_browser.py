"""A new trainee's whole first week on a 360 px phone in Chromium, in Chinese.

Registers with the code texted to the phone (read from the log backend), consents to face
processing, enrols a face, finds a course by walking the occupation tree, studies past the
sign-in face check until time is credited, reads the learning overview; later forgets the
password and sets a new one with a texted code.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
import sqlalchemy as sa

from app.consent.models import Consent
from app.demo.cli import DEMO_COURSE
from app.extensions import db
from app.identity import service as identity
from app.learning.models import LessonProgress
from app.verification.models import FaceReference
from tests.browser import PHONE, chromium, fake_camera_args, live_server, sideways_overflow
from tests.learning.test_player_in_browser import camera_video, play
from tests.verification.photos import FACES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_TRAINEE = {
    "name": "王小明",
    "id_number": "11010519491231002X",
    "phone": "13800138000",
    "password": "Study2026ok",
}
NEW_PASSWORD = "Fresh2027ok"


class Texts(logging.Handler):
    """The texts the log backend writes: (kind, params), oldest first."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.sent: list[tuple[str, dict[str, str]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = re.match(r"SMS to \S+ \((\w+)\): (.*)$", record.getMessage())
        if match:
            self.sent.append((match.group(1), json.loads(match.group(2))))

    def code(self, kind: str) -> str:
        return next(params["code"] for sent, params in reversed(self.sent) if sent == kind)


@pytest.fixture
def texts(fresh_app):
    handler = Texts()
    logger = logging.getLogger("app.identity.sms")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    fresh_app.config["SMS_BACKEND"] = "log"
    try:
        yield handler
    finally:
        fresh_app.config["SMS_BACKEND"] = ""
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    path = tmp_path_factory.mktemp("camera") / "obama.y4m"
    camera_video("obama_2.jpg", 221, path, 1.2)
    return path


def no_overflow(page) -> None:
    assert sideways_overflow(page) <= 0


def trainee_id(app) -> int:
    with app.app_context():
        user = identity.find_by_login(NEW_TRAINEE["id_number"])
        db.session.remove()
        return user.id


def count(app, query) -> int:
    with app.app_context():
        found = db.session.scalar(query)
        db.session.remove()
        return int(found or 0)


def test_a_new_trainee_finds_their_way_on_a_phone(database_url, fresh_app, runner, texts, camera):
    if not database_url.startswith("sqlite"):
        pytest.skip("one phone run is enough; the laptop journey runs in test_player_in_browser")
    fresh_app.config["HEARTBEAT_S"] = 2.0
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with live_server(fresh_app) as base, chromium(fake_camera_args(camera)) as browser:
        page = browser.new_context(viewport=PHONE).new_page()

        # Register: the code comes by text (here: the server log).
        page.goto(f"{base}/register")
        page.fill("#f-name", NEW_TRAINEE["name"])
        page.fill("#f-id_number", NEW_TRAINEE["id_number"])
        page.fill("#f-phone", NEW_TRAINEE["phone"])
        page.select_option("#f-district", "500103")
        page.click("#send-code")
        page.wait_for_function(
            "() => document.querySelector('#sms-status').textContent.trim() !== ''"
        )
        page.fill("#f-phone_code", texts.code("register"))
        page.fill("#f-password", NEW_TRAINEE["password"])
        page.fill("#f-password_confirm", NEW_TRAINEE["password"])
        no_overflow(page)
        page.click("button[type=submit].wide")
        page.wait_for_url(lambda url: "/register" not in url)
        user_id = trainee_id(fresh_app)

        # The face page first asks for consent; nothing is stored before it is given.
        page.goto(f"{base}/me/face")
        page.wait_for_url("**/me/consent**")
        no_overflow(page)
        assert count(fresh_app, sa.select(sa.func.count(Consent.id))) == 1  # the demo trainee's
        page.check("#f-agree")
        page.click("form button[type=submit].wide")
        page.wait_for_url("**/me/face**")
        assert (
            count(
                fresh_app,
                sa.select(sa.func.count(Consent.id)).where(Consent.user_id == user_id),
            )
            == 1
        )

        # Enrol a face from a photo file (the camera plays the same face for the checks).
        page.set_input_files("#upload", str(FACES / "obama_1.jpg"))
        page.wait_for_selector("#continue:not([hidden])", timeout=60_000)
        assert (
            count(
                fresh_app,
                sa.select(sa.func.count(FaceReference.id)).where(FaceReference.user_id == user_id),
            )
            == 1
        )

        # Find the demo course by walking down the occupation tree.
        page.goto(f"{base}/catalog")
        code = DEMO_COURSE["occupation_code"]
        parts = code.split("-")
        for depth in range(1, len(parts) + 1):
            page.click(f"a[href='/catalog/{'-'.join(parts[:depth])}']")
            page.wait_for_url(f"**/catalog/{'-'.join(parts[:depth])}")
        no_overflow(page)
        page.click(f".course-card a:has-text('{DEMO_COURSE['title']}')")
        page.wait_for_url("**/courses/*")
        page.click("button[type=submit].wide")  # enrol
        page.wait_for_selector(".lesson-progress")
        page.click(".lesson-progress .button >> nth=0")

        # Study: the sign-in check passes on the camera, then heartbeats credit time.
        page.wait_for_selector("#check", state="visible", timeout=20_000)
        page.wait_for_selector("#check", state="hidden", timeout=60_000)
        play(page)
        page.wait_for_function(
            "() => document.querySelector('video').currentTime > 5", timeout=30_000
        )
        for _ in range(100):
            if count(fresh_app, sa.select(sa.func.sum(LessonProgress.credited_s))) > 0:
                break
            page.wait_for_timeout(100)
        assert count(fresh_app, sa.select(sa.func.sum(LessonProgress.credited_s))) > 0

        # The overview: the course, its progress, its subsidy status and the next step.
        page.goto(f"{base}/learn")
        item = page.locator(".overview-item").first
        assert item.locator("h2").inner_text().strip() == DEMO_COURSE["title"]
        assert item.locator("progress").count() == 1
        assert item.locator(".overview-subsidy").inner_text().strip()
        assert item.locator(".overview-next a.button").count() == 1
        no_overflow(page)

        # Days later: signed out, the password forgotten, a new one set by texted code.
        page.context.clear_cookies()
        page.goto(f"{base}/login")
        page.click("a[href='/account/forgot']")
        page.fill("#f-login", NEW_TRAINEE["id_number"])
        page.click("button[type=submit].wide")
        page.wait_for_url("**/account/forgot/confirm**")
        page.fill("#f-code", texts.code("password_reset"))
        page.fill("#f-password", NEW_PASSWORD)
        page.fill("#f-password_confirm", NEW_PASSWORD)
        no_overflow(page)
        page.click("button[type=submit].wide")
        page.wait_for_url(lambda url: "/account/forgot" not in url)
        page.goto(f"{base}/login")
        page.fill("#f-login", NEW_TRAINEE["id_number"])
        page.fill("#f-password", NEW_PASSWORD)
        page.click("button[type=submit].wide")
        page.wait_for_url(lambda url: "/login" not in url)
        assert "/login" not in page.url
