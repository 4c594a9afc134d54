"""The district and key-group forms in headless Chromium, at a phone's and a laptop's width, in
both languages: the trainee's profile and the district officer's panel on the desk.

Set SCREENSHOT_DIR to keep PNGs of both pages.
"""

from __future__ import annotations

import pytest

from app.identity.models import Role
from tests.browser import LAPTOP, PHONE, chromium, live_server, screenshot_dir, sideways_overflow
from tests.browser import sign_in as browser_sign_in
from tests.bureau.test_trainee_district import enrolled_trainee, staff_browser
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, make_trainee

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_profile_and_desk_panel_fit_a_phone_and_a_laptop(database_url, fresh_app):
    if not database_url.startswith("sqlite"):
        pytest.skip("the pages' layout does not depend on the database")
    make_trainee(fresh_app)
    _, enrollment_id = enrolled_trainee(fresh_app, "500101", 601)
    staff_browser(fresh_app, Role.DISTRICT_OFFICER, "officer-a", "500101")
    shots = screenshot_dir()
    with chromium() as browser, live_server(fresh_app) as base:
        for viewport in (PHONE, LAPTOP):
            for lang in ("zh", "en"):
                context = browser.new_context(viewport=viewport)
                context.add_cookies([{"name": "lang", "value": lang, "url": base}])
                page = context.new_page()
                browser_sign_in(page, base, TRAINEE_ID, TRAINEE_PASSWORD)
                page.goto(f"{base}/profile")
                assert page.locator("#f-district option").count() == 42
                assert sideways_overflow(page) <= 0, ("profile", viewport, lang)
                if shots:
                    page.screenshot(
                        path=shots / f"profile-{lang}-{viewport['width']}.png", full_page=True
                    )
                context.close()

                context = browser.new_context(viewport=viewport)
                context.add_cookies([{"name": "lang", "value": lang, "url": base}])
                page = context.new_page()
                browser_sign_in(page, base, "officer-a", "Audit2026ok")
                page.goto(f"{base}/audit/enrollments/{enrollment_id}")
                page.click("#trainee-panel summary")
                assert page.locator("#trainee-panel select[name=district]").is_visible()
                assert sideways_overflow(page) <= 0, ("desk", viewport, lang)
                if shots:
                    page.screenshot(
                        path=shots / f"desk-panel-{lang}-{viewport['width']}.png", full_page=True
                    )
                context.close()
