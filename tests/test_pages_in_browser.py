"""The main pages in real headless Chromium at phone and laptop widths, in both languages.

Set SCREENSHOT_DIR to keep a PNG of each page (`make screenshots` does): look at them.
"""

from __future__ import annotations

import pytest

from app.demo.cli import DEMO_TRAINEE
from app.extensions import db
from app.identity import service as identity
from app.learning import service as learning
from tests.browser import LAPTOP, PHONE, chromium, live_server, screenshot_dir, sideways_overflow

PHONE_LANDSCAPE = {"width": 740, "height": 360}

pytestmark = pytest.mark.browser

PAGES = [("home", "/"), ("catalog", "/catalog"), ("catalog-node", "/catalog/6-31-01")]


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pages_fit_the_screen_and_register_errors_show(browser, fresh_app, viewport, lang):
    shots = screenshot_dir()
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    page = context.new_page()
    with live_server(fresh_app) as base:
        page.goto(f"{base}/lang/{lang}")
        for name, path in PAGES:
            page.goto(base + path)
            # Nothing may stick out sideways: a phone user must never scroll horizontally.
            overflow = sideways_overflow(page)
            assert overflow <= 0, f"{path} is {overflow}px too wide at {viewport['width']}px"
            if shots:
                page.screenshot(
                    path=shots / f"{name}-{lang}-{viewport['width']}.png", full_page=True
                )

        page.goto(base + "/register")
        page.fill("#f-name", "Robert'); DROP TABLE")
        page.fill("#f-id_number", "110105209901011234")
        page.fill("#f-phone", "123")
        page.select_option("#f-district", "500103")
        page.fill("#f-password", "short")
        page.click("button[type=submit].wide")
        page.wait_for_selector(".error-summary")
        errors = page.locator(".field .error")
        assert errors.count() == 5  # name, ID, phone, password and the differing confirmation
        assert sideways_overflow(page) <= 0
        if shots:
            page.screenshot(
                path=shots / f"register-errors-{lang}-{viewport['width']}.png", full_page=True
            )
    context.close()


SIGNED_IN_PAGES = {
    "110105199003071239": [  # the demo trainee
        ("profile", "/profile"),
        ("face", "/me/face"),
        ("courses", "/courses"),
        ("my-courses", "/learn"),
        ("enrollment", "/learn/1"),
        ("player", "/learn/lessons/1"),
        ("archive", "/me/archive"),
    ],
    "demo-admin": [
        ("admin-courses", "/admin/courses"),
        ("admin-course", "/admin/courses/1"),
        ("admin-platforms", "/admin/platforms"),
        ("standards", "/admin/standards"),
        ("desk-queue", "/audit"),
        ("api-docs", "/api/docs"),
        # the bureau's view (the dashboard has its own test, with charts and print)
        ("stats-definitions", "/stats/definitions"),
        ("stats-reports", "/stats/reports"),
        ("stats-report", "/stats/reports/2026-11"),
        ("stats-quarters", "/stats/quarters?year=2026"),
        ("stats-exports", "/stats/exports"),
        ("programmes", "/admin/programmes"),
        ("targets", "/admin/targets"),
        # English words are longer: the widest tables again in English
        ("lang-en", "/lang/en?next=/stats/definitions"),
        ("stats-report-en", "/stats/reports/2026-11"),
        ("stats-quarters-en", "/stats/quarters?year=2026"),
        ("stats-exports-en", "/stats/exports"),
        ("targets-en", "/admin/targets"),
    ],
}
PASSWORDS = {"110105199003071239": "DemoTrainee2026", "demo-admin": "DemoAdmin2026"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "viewport", [PHONE, PHONE_LANDSCAPE, LAPTOP], ids=["phone", "landscape", "laptop"]
)
def test_signed_in_pages_fit_the_screen(browser, database_url, fresh_app, runner, viewport):
    if not database_url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database; runs on SQLite")
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    assert runner.invoke(args=["stats", "freeze", "--month", "2026-11"]).exit_code == 0
    with fresh_app.test_request_context():  # the demo trainee enrols in the demo course
        learning.enroll(identity.find_by_login(DEMO_TRAINEE["id_number"]), 1)
        db.session.commit()
    shots = screenshot_dir()
    with live_server(fresh_app) as base:
        for login, pages in SIGNED_IN_PAGES.items():
            context = browser.new_context(viewport=viewport)
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill("#f-login", login)
            page.fill("#f-password", PASSWORDS[login])
            page.click("button[type=submit].wide")
            for name, path in pages:
                response = page.goto(base + path)
                assert response.status == 200, path
                overflow = sideways_overflow(page)
                assert overflow <= 0, f"{path} is {overflow}px too wide at {viewport['width']}px"
                if name == "player":  # nothing studied yet: no "complete" badge on show
                    assert page.locator("#complete").is_hidden()
                if shots:
                    page.screenshot(path=shots / f"{name}-{viewport['width']}.png", full_page=True)
            context.close()
