"""A trainee enrols in the demo course and watches it end to end in headless Chromium.

The whole journey: enrol, watch with the sign-in and closing face checks, complete, get the
certificate, an auditor rejects, the certificate is revoked. The phone run (360 px, SQLite) also
hides the page mid-lesson and resumes after a reload; the laptop run (1280 px, PostgreSQL)
watches straight through. Set SCREENSHOT_DIR to keep
screenshots of the catalogue, the player and the finished enrolment.
"""

from __future__ import annotations

import subprocess
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from app.certificates.models import Certificate
from app.demo.cli import DEMO_TRAINEE
from app.extensions import db
from app.identity import service as identity
from app.identity.models import Role
from app.learning.models import Enrollment, HeartbeatRecord, LessonProgress
from app.verification import service as verification_service
from media_pipeline import video
from tests.browser import (
    LAPTOP,
    PHONE,
    chromium,
    fake_camera_args,
    live_server,
    screenshot_dir,
    sideways_overflow,
)
from tests.conftest import api_token, bearer, make_staff
from tests.study import enrol_face
from tests.verification.photos import FACES, photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]
HIDE_PAGE = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def camera_video(source: str, top: int, dest, zoom: float = 1.0) -> None:
    """A y4m the fake camera plays: a 4:3 crop of the photo from `top`, zoomed by `zoom` and
    slowly zooming further, so each frame is a new picture.

    Chromium plays the file from its first frame each time a page opens the camera, so two
    pages would send the very same frames, which the server rightly refuses as a replay. The
    test opens each page in a browser of its own, fed a camera file that starts elsewhere:
    the same face at another moment. Within a page, the closing check's longer prompt makes
    its burst start later into the file than the sign-in check's.
    """
    subprocess.run(
        [
            video.ffmpeg_path(),
            "-v",
            "error",
            "-y",
            "-framerate",
            "5",
            "-loop",
            "1",
            "-t",
            "40",
            "-i",
            str(FACES / source),
            "-vf",
            f"crop=iw:iw*3/4:0:{top},scale=640:480,"
            f"zoompan=z='{zoom}+0.006*in':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:s=320x240:fps=5,"
            "format=yuv420p",
            str(dest),
        ],
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def trainee_cameras(tmp_path_factory):
    """Three camera files of the trainee, each starting at another zoom."""
    folder = tmp_path_factory.mktemp("camera")
    paths = []
    for number, zoom in enumerate((1.0, 1.2, 1.4)):
        path = folder / f"obama-{number}.y4m"
        camera_video("obama_2.jpg", 221, path, zoom)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def stranger_camera(tmp_path_factory):
    path = tmp_path_factory.mktemp("camera") / "biden.y4m"
    camera_video("biden_2.jpg", 25, path)
    return path


@contextmanager
def browser_page(camera, viewport, cookies=None):
    """A fresh Chromium whose camera plays `camera`, carrying over a signed-in session."""
    with chromium(fake_camera_args(camera)) as browser:
        context = browser.new_context(viewport=viewport)
        if cookies:
            context.add_cookies(cookies)
        yield context.new_page()
        context.close()


def seed_demo_with_face(app, runner, face: str = "obama_1.jpg") -> None:
    """The demo course and accounts, the demo trainee's face enrolled from `face`."""
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with app.app_context():
        trainee_id = identity.find_by_login(DEMO_TRAINEE["id_number"]).id
        db.session.remove()
    enrol_face(app, trainee_id, photo(face))


def sign_in_and_open_first_lesson(page, base) -> None:
    page.goto(f"{base}/login")
    page.fill("#f-login", DEMO_TRAINEE["id_number"])
    page.fill("#f-password", DEMO_TRAINEE["password"])
    page.click("button[type=submit].wide")
    page.goto(f"{base}/courses")
    page.click(".course-card h2 a")
    page.click("button[type=submit].wide")  # enrol
    page.wait_for_selector(".lesson-progress")
    page.click(".lesson-progress .button >> nth=0")


def pass_check(page) -> None:
    """The sign-in check opens the camera dialog; the fake camera shows the trainee."""
    page.wait_for_selector("#check", state="visible", timeout=20_000)
    page.wait_for_selector("#check", state="hidden", timeout=40_000)


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


def certificate_number(app) -> str:
    with app.app_context():
        number = db.session.scalars(sa.select(Certificate.number)).one()
        db.session.remove()
        return number


def reject(app, reason: str) -> None:
    """An auditor rejects the trainee's only enrolment through the desk's API."""
    make_staff(app, Role.AUDITOR, "journey-auditor")
    client = app.test_client()
    headers = bearer(api_token(client, "journey-auditor", "Audit2026ok"))
    with app.app_context():
        enrollment_id = db.session.scalars(sa.select(Enrollment.id)).one()
        db.session.remove()
    response = client.post(
        f"/api/v1/audit/enrollments/{enrollment_id}/decision",
        json={"decision": "reject", "reason": reason},
        headers=headers,
    )
    assert response.status_code == 200, response.get_json()


def play(page) -> None:
    page.wait_for_function("() => document.querySelector('video').readyState >= 1", timeout=20_000)
    page.evaluate(
        "() => { const v = document.querySelector('video'); v.muted = true; "
        "return v.play().catch(() => null); }"
    )


def test_trainee_watches_the_demo_course_to_completion(
    database_url, fresh_app, runner, trainee_cameras
):
    on_phone = database_url.startswith("sqlite")
    viewport = PHONE if on_phone else LAPTOP
    shots = screenshot_dir()
    fresh_app.config["HEARTBEAT_S"] = 2.0
    try:
        seed_demo_with_face(fresh_app, runner)
        with live_server(fresh_app) as base:
            with browser_page(trainee_cameras[0], viewport) as page:
                sign_in_and_open_first_lesson(page, base)
                lesson_url = page.url
                pass_check(page)
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
                cookies = page.context.cookies()
            # Later, in another browser: the lesson resumes where it stopped and completes.
            with browser_page(trainee_cameras[1], viewport, cookies) as page:
                page.goto(lesson_url)
                pass_check(page)
                if on_phone:
                    page.wait_for_function(
                        "() => document.querySelector('video').currentTime > 4", timeout=20_000
                    )
                play(page)
                page.wait_for_selector("#complete:not([hidden])", timeout=60_000)
                overflow = sideways_overflow(page)
                assert overflow <= 0
                if shots:
                    page.screenshot(path=shots / f"player-{viewport['width']}.png", full_page=True)
                next_url = base + page.locator("a:has-text('下一课')").get_attribute("href")
            with browser_page(trainee_cameras[2], viewport, cookies) as page:
                page.goto(next_url)
                pass_check(page)
                play(page)
                page.wait_for_selector("#complete:not([hidden])", timeout=60_000)
                page.click(".crumbs a")
                page.wait_for_selector(".lesson-progress")
                assert page.locator(".lesson-progress .badge-ready").count() == 2
                assert "您已完成本课程的全部课节" in page.content()
                # Every check passed: eligible at the demo standard, with a certificate.
                subsidy = page.locator("#subsidy")
                assert subsidy.locator(".badge-eligible").count() == 1
                assert "800.00" in subsidy.inner_text()
                if shots:
                    page.screenshot(
                        path=shots / f"enrollment-{viewport['width']}.png", full_page=True
                    )
                enrollment_url = page.url
                subsidy.locator("a[href^='/certificates/']").click()
                page.wait_for_selector("svg.qr")
                assert sideways_overflow(page) <= 0
                if shots:
                    page.screenshot(
                        path=shots / f"certificate-{viewport['width']}.png", full_page=True
                    )
                number = certificate_number(fresh_app)
                # An auditor rejects: the certificate is revoked at once, and both the
                # trainee's page and the public verification say so.
                reject(fresh_app, "学习记录与签到不符")
                page.goto(enrollment_url)
                notice = page.locator("#subsidy .error-summary")
                assert number in notice.inner_text() and "撤销" in notice.inner_text()
                assert "学习记录与签到不符" in page.locator("#subsidy").inner_text()
                assert page.locator("#subsidy textarea[name=message]").count() == 1  # appeal
                assert sideways_overflow(page) <= 0
                if shots:
                    page.screenshot(
                        path=shots / f"enrollment-revoked-{viewport['width']}.png",
                        full_page=True,
                    )
                page.goto(f"{base}/verify/{number}")
                assert "撤销" in page.content()
    finally:
        fresh_app.config["HEARTBEAT_S"] = 15.0


def test_someone_else_in_front_of_the_camera_fails_the_check(
    database_url, fresh_app, runner, stranger_camera
):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser run is enough; it runs on SQLite")
    seed_demo_with_face(fresh_app, runner)
    with live_server(fresh_app) as base, browser_page(stranger_camera, PHONE) as page:
        sign_in_and_open_first_lesson(page, base)
        page.wait_for_selector("#check", state="visible", timeout=20_000)
        page.wait_for_function(
            "() => document.getElementById('check-status').textContent.includes('不符')",
            timeout=40_000,
        )
        shots = screenshot_dir()
        if shots:
            page.screenshot(path=shots / "check-failed-360.png")
        assert page.evaluate("document.querySelector('#video').paused")


# Where focus is, as the id of the element, "body", or "outside" when it is behind the dialog.
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "body";
  return document.getElementById("check").contains(el) ? (el.id || el.className) : "outside";
}"""
# Before the sign-in check opens, the trainee is on the quality menu: focus returns there.
FOCUS_QUALITY = """document.addEventListener("DOMContentLoaded", () => {
  const quality = document.getElementById("quality");
  if (quality) { quality.focus(); }
});"""


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_check_dialog_holds_focus_and_shows_it_is_judging(
    database_url, fresh_app, runner, trainee_cameras, monkeypatch, viewport
):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser run is enough; it runs on SQLite")
    # A long count-down, so the test (not the clock) decides when the photos are taken.
    monkeypatch.setattr(verification_service, "PROMPT_LEAD_STILL_S", 60)
    monkeypatch.setattr(verification_service, "PROMPT_LEAD_S", 60)
    seed_demo_with_face(fresh_app, runner)
    shots = screenshot_dir()
    with live_server(fresh_app) as base, browser_page(trainee_cameras[0], viewport) as page:
        page.add_init_script(FOCUS_QUALITY)
        sign_in_and_open_first_lesson(page, base)
        page.wait_for_selector("#check", state="visible", timeout=20_000)
        assert page.evaluate("document.getElementById('check').matches(':modal')")
        assert page.evaluate(FOCUS) == "check-panel"  # focus moved into the dialog
        shoot = page.locator("#check-shoot")
        page.wait_for_function("() => !document.getElementById('check-shoot').disabled")
        assert shoot.get_attribute("aria-disabled") == "false"
        # Tab and Shift+Tab go round inside; Escape does not dismiss the check.
        for key in ["Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab", "Escape", "Tab"]:
            page.keyboard.press(key)
            assert page.evaluate(FOCUS) not in ("outside", "body"), key
        assert page.evaluate("document.getElementById('check').open")
        assert page.evaluate(FOCUS) == "check-shoot"
        # The page behind is inert: a click on the video does not reach it.
        assert page.evaluate(
            "document.elementFromPoint(5, 5) === null"
            " || document.getElementById('check').contains(document.elementFromPoint(5, 5))"
            " || !document.getElementById('video').contains(document.elementFromPoint(5, 5))"
        )
        if shots:
            page.screenshot(path=shots / f"check-open-{viewport['width']}.png")
        # The answer is held on its way to the server until the judging state is examined:
        # the server judges in a second or so here, and the state must not end mid-test.
        held = []
        page.route(
            "**/api/v1/checks/*",
            lambda route: (
                held.append(route) if route.request.method == "POST" else route.continue_()
            ),
        )
        shoot.click()  # take the photos now, without waiting for the count-down
        # While the server judges: a spinner, "正在核验", an aria-live status and a camera
        # button that is disabled and looks it.
        page.wait_for_selector("#check-spinner", state="visible", timeout=20_000)
        page.wait_for_function("() => document.getElementById('check-waited').textContent")
        state = page.evaluate(
            """() => {
              const button = document.getElementById("check-shoot");
              const status = document.getElementById("check-status");
              return {
                text: status.textContent,
                live: status.getAttribute("aria-live"),
                busy: document.querySelector(".check-panel").getAttribute("aria-busy"),
                disabled: button.disabled,
                ariaDisabled: button.getAttribute("aria-disabled"),
                background: getComputedStyle(button).backgroundColor,
                cursor: getComputedStyle(button).cursor,
              };
            }"""
        )
        assert "正在核验" in state["text"] and state["live"] == "assertive"
        assert state["busy"] == "true"
        assert state["disabled"] and state["ariaDisabled"] == "true"
        assert state["background"] == "rgb(201, 209, 219)" and state["cursor"] == "not-allowed"
        assert page.evaluate(FOCUS) == "check-panel"  # focus left the button, not the dialog
        if shots:
            page.screenshot(path=shots / f"check-judging-{viewport['width']}.png")
        assert len(held) == 1
        held[0].continue_()
        # Passed: the dialog closes and focus is back where it was.
        page.wait_for_selector("#check", state="hidden", timeout=40_000)
        assert page.evaluate("document.activeElement.id") == "quality"
        assert sideways_overflow(page) <= 0
