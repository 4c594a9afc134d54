"""The auditors' desk in headless Chromium: worked from the keyboard, evidence side by side.

Set SCREENSHOT_DIR to keep PNGs of the queue, the review page and the e-archive.
"""

from __future__ import annotations

import pytest

from app.identity.models import Role
from tests.browser import (
    LAPTOP,
    PHONE,
    chromium,
    live_server,
    screenshot_dir,
    sideways_overflow,
    sign_in,
)
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, make_staff, make_trainee
from tests.learning.test_study_time import watch_honestly
from tests.study import enrol_face
from tests.subsidy.test_scenarios import SECOND_ID, open_session
from tests.verification.photos import photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Every image matching a selector has arrived and decoded.
LOADED = "() => [...document.querySelectorAll('{}')].every(i => i.complete && i.naturalWidth)"


def completed_with_a_failed_check(study) -> int:
    enrollment_id = study.enrol()
    sign_in = open_session(study)
    assert study.fail_check(sign_in["check"]["id"], photo("biden_2.jpg"))["code"] == "mismatch"
    watch_honestly(study, sign_in["id"])  # its closing check confirms the time
    return enrollment_id


def settled(page) -> None:
    """The page a decision redirected to has loaded and desk.js has put the focus back where
    the auditor was (on load, then a tick): keys pressed before that could land elsewhere, as
    they did on a loaded CI box."""
    page.wait_for_selector(".flash-success")
    page.wait_for_load_state("load")
    page.evaluate("() => new Promise((done) => setTimeout(done, 50))")


def test_auditor_works_through_a_review_from_the_keyboard(study, database_url, fresh_app):
    if not database_url.startswith("sqlite"):
        pytest.skip("the desk's behaviour in a browser does not depend on the database")
    enrollment_id = completed_with_a_failed_check(study)
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000", name="奥巴")
    enrol_face(fresh_app, second, photo("obama_3.jpg"))  # the same face: flagged
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    shots = screenshot_dir()
    with chromium() as browser, live_server(fresh_app) as base:
        context = browser.new_context(viewport=LAPTOP)
        page = context.new_page()
        sign_in(page, base, "auditor1", "Audit2026ok")
        page.goto(f"{base}/lang/en")
        page.goto(f"{base}/audit")
        assert page.locator("tr[data-href]").count() == 1
        if shots:
            page.screenshot(path=shots / "desk-queue-1280.png", full_page=True)
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/audit/enrollments/{enrollment_id}")
        # The reference and every snapshot load, through logged, signed links.
        images = page.locator(".desk img")
        assert images.count() >= 3
        page.wait_for_function(LOADED.format(".desk img"))
        assert sideways_overflow(page) <= 0
        reference = page.locator(".reference img").bounding_box()
        snapshot = page.locator(".frame img").first.bounding_box()
        assert reference["x"] + reference["width"] <= snapshot["x"]  # side by side
        if shots:
            page.screenshot(path=shots / "desk-review-1280.png", full_page=True)

        page.keyboard.press("j")  # the first check: the failed sign-in
        page.keyboard.press("c")
        page.keyboard.type("Same person, poor light")
        page.keyboard.press("Enter")
        settled(page)
        assert page.locator(".badge-eligible").count() == 1

        page.keyboard.press("r")
        page.keyboard.type("Spot check found a stand-in")
        page.keyboard.press("Control+Enter")
        settled(page)
        assert page.locator(".badge-ineligible").count() == 1
        context.close()

        phone = browser.new_context(viewport=PHONE)
        page = phone.new_page()
        sign_in(page, base, "auditor1", "Audit2026ok")
        page.goto(f"{base}/audit")
        page.click("a[href^='/audit/flags/']")
        page.wait_for_function(LOADED.format(".face-pair img"))
        if shots:
            page.screenshot(path=shots / "desk-flag-360.png", full_page=True)
        assert sideways_overflow(page) <= 0
        phone.close()

        phone = browser.new_context(viewport=PHONE)
        page = phone.new_page()
        sign_in(page, base, TRAINEE_ID, TRAINEE_PASSWORD)
        page.goto(f"{base}/me/archive")
        assert page.locator(f"#enrollment-{enrollment_id} textarea[name=message]").count() == 1
        if shots:
            page.screenshot(path=shots / "archive-360.png", full_page=True)
        assert sideways_overflow(page) <= 0
        phone.close()


def test_desk_keeps_the_place_and_the_focus_after_an_action(study, database_url, fresh_app):
    """On a phone the checks lie far down the page: after clearing one, the page comes back
    where it was, at that check, and the focus is on the next check, not at the top."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the desk's behaviour in a browser does not depend on the database")
    enrollment_id = completed_with_a_failed_check(study)
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    with chromium() as browser, live_server(fresh_app) as base:
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        sign_in(page, base, "auditor1", "Audit2026ok")
        page.goto(f"{base}/audit/enrollments/{enrollment_id}")
        page.wait_for_function(LOADED.format(".desk img"))
        cards = page.locator(".check-card")
        assert cards.count() >= 2
        failed = page.locator(".check-card.check-failed").first
        failed_id = failed.get_attribute("id")
        following = page.evaluate(
            "(id) => { const all = [...document.querySelectorAll('.check-card')];"
            " const at = all.findIndex(c => c.id === id); return (all[at + 1] || all[at]).id; }",
            failed_id,
        )
        failed.focus()
        failed.scroll_into_view_if_needed()
        before = page.evaluate("window.scrollY")
        assert before > 300  # far from the top: there is a place to lose
        page.keyboard.press("c")
        page.keyboard.type("Same person, poor light")
        page.keyboard.press("Enter")
        settled(page)
        page.wait_for_function(
            f"() => document.activeElement && document.activeElement.id === '{following}'"
        )
        assert page.url.endswith(f"#{failed_id}")
        after = page.evaluate("window.scrollY")
        assert abs(after - before) < 200, (before, after)  # the flash above adds a line
        box = page.locator(f"#{failed_id}").bounding_box()
        assert box["y"] < PHONE["height"] and box["y"] + box["height"] > 0  # still in view
        # The keyboard goes on from there: J moves to the check after the focused one.
        page.keyboard.press("k")
        assert page.evaluate("document.activeElement.id") == failed_id
        context.close()
