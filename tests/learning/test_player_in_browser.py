"""A trainee enrols in the demo course and watches it end to end in headless Chromium.

The phone run (360 px, SQLite) also hides the page mid-lesson and resumes after a reload;
the laptop run (1280 px, PostgreSQL) watches straight through. Set SCREENSHOT_DIR to keep
screenshots of the catalogue, the player and the finished enrolment.
"""

from __future__ import annotations

import pytest

from app.extensions import db
from app.learning.models import HeartbeatRecord, LessonProgress
from tests.browser import LAPTOP, PHONE, chromium, live_server, screenshot_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]
HIDE_PAGE = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def hidden_reported(app) -> bool:
    with app.app_context():
        found = db.session.query(HeartbeatRecord).filter_by(hidden=True).count() > 0
        db.session.remove()
        return found


def credited(app) -> float:
    with app.app_context():
        total = sum(row.credited_s for row in db.session.query(LessonProgress).all())
        db.session.remove()
        return total


def play(page) -> None:
    page.wait_for_function("() => document.querySelector('video').readyState >= 1", timeout=20_000)
    page.evaluate(
        "() => { const v = document.querySelector('video'); v.muted = true; "
        "return v.play().catch(() => null); }"
    )


def test_trainee_watches_the_demo_course_to_completion(database_url, fresh_app, runner):
    on_phone = database_url.startswith("sqlite")
    viewport = PHONE if on_phone else LAPTOP
    shots = screenshot_dir()
    fresh_app.config["HEARTBEAT_S"] = 2.0
    try:
        assert runner.invoke(args=["demo", "seed"]).exit_code == 0
        with chromium() as browser, live_server(fresh_app) as base:
            page = browser.new_page(viewport=viewport)
            page.goto(f"{base}/login")
            page.fill("#f-login", "110105199003071239")
            page.fill("#f-password", "DemoTrainee2026")
            page.click("button[type=submit].wide")
            page.goto(f"{base}/courses")
            if shots:
                page.screenshot(path=shots / f"courses-{viewport['width']}.png", full_page=True)
            page.click(".course-card h2 a")
            page.click("button[type=submit].wide")  # enrol
            page.wait_for_selector(".lesson-progress")
            page.click(".lesson-progress .button >> nth=0")

            play(page)
            if on_phone:
                page.wait_for_function(
                    "() => document.querySelector('video').currentTime > 6", timeout=20_000
                )
                page.evaluate(HIDE_PAGE)
                page.wait_for_function("() => document.querySelector('video').paused")
                for _ in range(50):  # the heartbeat that reports the hidden page is paid
                    if hidden_reported(fresh_app):
                        break
                    page.wait_for_timeout(100)
                before = credited(fresh_app)
                page.wait_for_timeout(5000)  # two heartbeat periods with the page hidden
                assert credited(fresh_app) - before < 0.5
                page.reload()
                page.wait_for_function(
                    "() => document.querySelector('video').currentTime > 4", timeout=20_000
                )  # resumed where it stopped
                play(page)
            page.wait_for_selector("#complete:not([hidden])", timeout=60_000)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0
            if shots:
                page.screenshot(path=shots / f"player-{viewport['width']}.png", full_page=True)

            page.click("text=下一课")
            play(page)
            page.wait_for_selector("#complete:not([hidden])", timeout=60_000)
            page.click(".crumbs a")
            page.wait_for_selector(".lesson-progress")
            assert page.locator(".lesson-progress .badge-ready").count() == 2
            assert "您已完成本课程的全部课节" in page.content()
            if shots:
                page.screenshot(path=shots / f"enrollment-{viewport['width']}.png", full_page=True)
    finally:
        fresh_app.config["HEARTBEAT_S"] = 15.0
