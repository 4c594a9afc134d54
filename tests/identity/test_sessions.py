"""Signed-in sessions end on the server's word: at sign-out (every copy of the cookie), after
SESSION_IDLE_S without a request and SESSION_MAX_S after sign-in."""

from __future__ import annotations

import pytest

from app.identity.models import Role
from tests.conftest import csrf_from, make_staff, sign_in_page


def signed_in_desk(app):
    make_staff(app, Role.AUDITOR, "auditor1")
    browser = app.test_client()
    sign_in_page(browser, "auditor1")
    assert browser.get("/audit").status_code == 200
    return browser


def copy_of(app, browser):
    """Another browser carrying the very same session cookie."""
    other = app.test_client()
    other.set_cookie("session", browser.get_cookie("session").value)
    return other


def test_a_copied_session_cookie_stops_working_after_sign_out(fresh_app):
    browser = signed_in_desk(fresh_app)
    thief = copy_of(fresh_app, browser)
    assert thief.get("/audit").status_code == 200

    token = csrf_from(browser.get("/audit").get_data(as_text=True))
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302

    refused = thief.get("/audit")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]


def test_signing_in_again_after_sign_out_works(fresh_app):
    browser = signed_in_desk(fresh_app)
    token = csrf_from(browser.get("/audit").get_data(as_text=True))
    browser.post("/logout", data={"csrf_token": token})
    sign_in_page(browser, "auditor1")
    assert browser.get("/audit").status_code == 200


@pytest.mark.parametrize(
    ("stamp", "limit"),
    [("seen_at", "SESSION_IDLE_S"), ("signed_in_at", "SESSION_MAX_S")],
    ids=["idle", "too_old_however_busy"],
)
def test_a_session_past_its_limits_ends(fresh_app, stamp, limit):
    browser = signed_in_desk(fresh_app)
    with browser.session_transaction() as session:
        session[stamp] -= fresh_app.config[limit] + 1

    refused = browser.get("/audit")

    assert refused.status_code == 302 and "/login" in refused.headers["Location"]


def test_a_session_in_use_stays_signed_in(fresh_app):
    browser = signed_in_desk(fresh_app)
    with browser.session_transaction() as session:
        session["seen_at"] -= fresh_app.config["SESSION_IDLE_S"] - 5  # active a moment ago
    assert browser.get("/audit").status_code == 200
    with browser.session_transaction() as session:
        assert session["seen_at"] > session["signed_in_at"]  # refreshed
