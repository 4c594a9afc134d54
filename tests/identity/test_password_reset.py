"""Password recovery by SMS code, phone verification at registration and staff resets: codes
expire, are used once, allow five tries, are throttled per phone and per address, and a reset
ends every session and token of the account."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.db import utcnow
from app.extensions import db
from app.identity.models import Role, SmsCode, User
from app.identity.throttle import MemoryFailureStore
from config import Config
from tests.browser import sideways_overflow
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    count_rows,
    csrf_from,
    make_staff,
    make_trainee,
    sign_in_page,
)

PHONE = "13912345678"  # make_trainee's
NEW_PASSWORD = "Fresh2027ok"
REGISTRATION = {
    "name": "王小明",
    "id_number": "11010519491231002X",
    "phone": "13800138000",
    "password": "Study2026ok",
}


@pytest.fixture
def sms_on(fresh_app, monkeypatch, caplog):
    """SMS with the log backend; the texts land in caplog."""
    monkeypatch.setitem(fresh_app.config, "SMS_BACKEND", "log")
    caplog.set_level(logging.INFO, logger="app.identity.sms")
    return fresh_app


def texts(caplog) -> list[tuple[str, dict[str, str]]]:
    """(kind, params) of every text sent, oldest first."""
    found = []
    for record in caplog.records:
        if record.name == "app.identity.sms" and record.getMessage().startswith("SMS to"):
            match = re.match(r"SMS to \S+ \((\w+)\): (.*)$", record.getMessage())
            assert match, record.getMessage()
            found.append((match.group(1), json.loads(match.group(2))))
    return found


def last_code(caplog) -> str:
    return texts(caplog)[-1][1]["code"]


def ask_reset(client, login=TRAINEE_ID):
    return client.post("/api/v1/auth/password-reset", json={"login": login})


def confirm(client, code, password=NEW_PASSWORD, login=TRAINEE_ID):
    return client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"login": login, "code": code, "password": password},
    )


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def audit_rows(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action))
        return [db.session.merge(row) for row in rows]


def audit_text(app) -> str:
    with app.app_context():
        rows = db.session.execute(sa.select(AuditEntry.detail, AuditEntry.actor_label)).all()
        return " ".join(f"{detail} {label}" for detail, label in rows)


# --- asking for a code ---------------------------------------------------------------------


def test_the_answer_is_the_same_whether_or_not_the_account_exists(client, sms_on, caplog):
    make_trainee(sms_on)
    make_staff(sms_on)  # staff accounts have no phone
    answers = [ask_reset(client, login) for login in (TRAINEE_ID, "11010519491231002X", "auditor1")]
    assert {r.status_code for r in answers} == {202}
    assert len({r.get_data() for r in answers}) == 1
    # Only the real account with a phone got a text; only it has a code row.
    assert [kind for kind, _ in texts(caplog)] == ["password_reset"]
    assert re.fullmatch(r"\d{6}", last_code(caplog))
    assert count_rows(sms_on, SmsCode) == 1


def test_the_code_is_stored_only_as_a_keyed_digest(client, sms_on, caplog):
    make_trainee(sms_on)
    ask_reset(client)
    code = last_code(caplog)
    with sms_on.app_context():
        row = db.session.scalar(sa.select(SmsCode))
        stored = " ".join(str(v) for v in (row.code_digest, row.phone_digest))
    assert code not in stored and PHONE not in stored
    assert len(row.code_digest) == 64


def test_a_flood_from_one_address_gets_429_and_sends_nothing_more(
    client, sms_on, caplog, monkeypatch
):
    monkeypatch.setitem(sms_on.config, "SMS_CODE_MAX_PER_ADDRESS", 3)
    make_trainee(sms_on)
    statuses = [ask_reset(client, "11010519491231002X").status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    flooded = ask_reset(client)
    assert flooded.status_code == 429
    assert error_code(flooded) == "too_many_requests"
    assert int(flooded.headers["Retry-After"]) > 0
    assert texts(caplog) == [] and count_rows(sms_on, SmsCode) == 0


def test_one_phone_gets_one_code_per_resend_gap_and_a_few_per_window(
    client, sms_on, caplog, monkeypatch
):
    monkeypatch.setitem(sms_on.config, "SMS_CODE_RESEND_S", 1)
    monkeypatch.setitem(sms_on.config, "SMS_CODE_MAX_PER_PHONE", 2)
    make_trainee(sms_on)
    assert ask_reset(client).status_code == 202
    assert ask_reset(client).status_code == 202  # within the gap: same answer, no text
    assert len(texts(caplog)) == 1
    time.sleep(1.1)
    assert ask_reset(client).status_code == 202
    assert len(texts(caplog)) == 2
    time.sleep(1.1)
    assert ask_reset(client).status_code == 202  # past the window's limit: no text
    assert len(texts(caplog)) == 2
    assert count_rows(sms_on, SmsCode) == 2


def test_with_sms_off_recovery_by_code_is_unavailable(client, fresh_app):
    make_trainee(fresh_app)
    for response in (
        ask_reset(client),
        client.post("/api/v1/auth/phone-code", json={"phone": PHONE}),
    ):
        assert response.status_code == 404
        assert error_code(response) == "sms_disabled"
    assert count_rows(fresh_app, SmsCode) == 0


# --- confirming ----------------------------------------------------------------------------


def test_a_reset_sets_the_password_and_ends_every_session_and_token(client, sms_on, caplog):
    make_trainee(sms_on)
    token = api_token(sms_on.test_client(), TRAINEE_ID, TRAINEE_PASSWORD)
    browser = sms_on.test_client()
    sign_in_page(browser, TRAINEE_ID, TRAINEE_PASSWORD)
    ask_reset(client)
    code = last_code(caplog)
    response = confirm(client, code)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["message"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert browser.get("/profile").status_code == 302
    assert (
        client.post(
            "/api/v1/auth/token", json={"login": TRAINEE_ID, "password": TRAINEE_PASSWORD}
        ).status_code
        == 401
    )
    api_token(sms_on.test_client(), TRAINEE_ID, NEW_PASSWORD)
    # Audited, with neither the code nor a password in the log.
    [entry] = audit_rows(sms_on, "password.reset")
    assert json.loads(entry.detail) == {"via": "sms", "tokens_revoked": 1}
    assert audit_rows(sms_on, "password.reset_code_sent")
    logged = audit_text(sms_on)
    assert code not in logged and NEW_PASSWORD not in logged and TRAINEE_ID not in logged


def test_a_code_works_once(client, sms_on, caplog):
    make_trainee(sms_on)
    ask_reset(client)
    code = last_code(caplog)
    assert confirm(client, code).status_code == 200
    again = confirm(client, code, password="Another2027ok")
    assert again.status_code == 422 and error_code(again) == "invalid_code"
    api_token(sms_on.test_client(), TRAINEE_ID, NEW_PASSWORD)


def test_an_expired_code_is_refused(client, sms_on, caplog):
    make_trainee(sms_on)
    ask_reset(client)
    code = last_code(caplog)
    with sms_on.app_context():
        db.session.execute(sa.update(SmsCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = confirm(client, code)
    assert response.status_code == 422 and error_code(response) == "invalid_code"
    api_token(sms_on.test_client(), TRAINEE_ID, TRAINEE_PASSWORD)


def test_five_wrong_tries_use_the_code_up(client, sms_on, caplog):
    make_trainee(sms_on)
    ask_reset(client)
    code = last_code(caplog)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        response = confirm(client, wrong)
        assert response.status_code == 422 and error_code(response) == "invalid_code"
    assert confirm(client, "abc").status_code == 422  # malformed: not even counted
    assert confirm(client, wrong).status_code == 422  # the fifth wrong try
    response = confirm(client, code)
    assert response.status_code == 422 and error_code(response) == "invalid_code"
    with sms_on.app_context():
        assert db.session.scalar(sa.select(SmsCode.attempts)) == 5


def test_wrong_and_unknown_logins_and_old_codes_all_get_the_same_answer(client, sms_on, caplog):
    make_trainee(sms_on)
    ask_reset(client)
    first = last_code(caplog)
    sms_on.extensions["veriskill.login_throttle"].store = MemoryFailureStore()  # no resend gap
    ask_reset(client)
    second = last_code(caplog)
    answers = [
        confirm(client, second, login="11010519491231002X"),
        confirm(client, second, login=""),
        confirm(client, None),
    ]
    if first != second:
        answers.append(confirm(client, first))  # a newer code replaces it
    for response in answers:
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "invalid_code"
        assert response.get_json()["error"]["message"] == answers[0].get_json()["error"]["message"]
    assert confirm(client, second).status_code == 200


def test_a_weak_password_is_refused_with_the_password_rule_and_keeps_the_code(
    client, sms_on, caplog
):
    make_trainee(sms_on)
    ask_reset(client)
    code = last_code(caplog)
    for weak in ("short1", "onlyletters", f"a{PHONE}"):
        response = confirm(client, code, password=weak)
        assert response.status_code == 422
        error = response.get_json()["error"]
        assert error["code"] == "invalid" and set(error["fields"]) == {"password"}
    assert confirm(client, code).status_code == 200


@pytest.mark.postgres
def test_two_parallel_confirms_of_one_code_cannot_both_succeed(
    sms_on, caplog, database_url, monkeypatch
):
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL")
    # The real hash cost: it is the time the four confirms overlap in.
    monkeypatch.setitem(sms_on.config, "PASSWORD_HASH_COST", Config.PASSWORD_HASH_COST)
    make_trainee(sms_on)
    ask_reset(sms_on.test_client())
    code = last_code(caplog)
    start = threading.Barrier(4)
    statuses: list[int] = []

    def attempt(password: str) -> None:
        client = sms_on.test_client()
        start.wait()
        statuses.append(confirm(client, code, password=password).status_code)

    threads = [threading.Thread(target=attempt, args=(f"Parallel{n}2027ok",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200, 422, 422, 422]
    assert len(audit_rows(sms_on, "password.reset")) == 1


# --- registration with a phone code --------------------------------------------------------


def register(client, **changes):
    return client.post("/api/v1/auth/register", json={**REGISTRATION, **changes})


def test_registration_needs_the_code_texted_to_the_phone(client, sms_on, caplog):
    missing = register(client)
    assert missing.status_code == 422 and error_code(missing) == "invalid_code"
    sent = client.post("/api/v1/auth/phone-code", json={"phone": REGISTRATION["phone"]})
    assert sent.status_code == 202
    assert sent.get_json()["expires_in_s"] == 300
    code = last_code(caplog)
    assert texts(caplog)[-1][0] == "register"
    wrong = register(client, phone_code=f"{(int(code) + 1) % 1_000_000:06d}")
    assert wrong.status_code == 422 and error_code(wrong) == "invalid_code"
    # A code for another phone does not fit this one.
    other = register(client, phone="13700137000", phone_code=code)
    assert other.status_code == 422 and error_code(other) == "invalid_code"
    assert count_rows(sms_on, User) == 0
    assert register(client, phone_code=code).status_code == 201
    reused = register(
        client, id_number=TRAINEE_ID, name="李四", phone_code=code
    )  # the same code again
    assert reused.status_code == 422 and error_code(reused) == "invalid_code"
    assert count_rows(sms_on, User) == 1


def test_a_refused_registration_leaves_the_code_usable(client, sms_on, caplog):
    client.post("/api/v1/auth/phone-code", json={"phone": REGISTRATION["phone"]})
    code = last_code(caplog)
    bad = register(client, phone_code=code, password="weak")
    assert bad.status_code == 422 and error_code(bad) == "invalid"
    assert register(client, phone_code=code).status_code == 201


def test_phone_codes_are_throttled_per_phone_and_refuse_bad_numbers(client, sms_on, caplog):
    first = client.post("/api/v1/auth/phone-code", json={"phone": PHONE})
    assert first.status_code == 202
    again = client.post("/api/v1/auth/phone-code", json={"phone": PHONE})
    assert again.status_code == 429 and error_code(again) == "too_many_requests"
    assert 0 < again.get_json()["error"]["retry_after_s"] <= 60
    bad = client.post("/api/v1/auth/phone-code", json={"phone": "12345"})
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {"phone"}
    assert len(texts(caplog)) == 1 and count_rows(sms_on, SmsCode) == 1


# --- pages ---------------------------------------------------------------------------------


def test_forgotten_password_pages_reset_by_code(client, sms_on, caplog):
    make_trainee(sms_on)
    login_page = client.get("/login").get_data(as_text=True)
    assert 'href="/account/forgot"' in login_page
    page = client.get("/account/forgot")
    assert page.status_code == 200 and 'name="login"' in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    sent = client.post("/account/forgot", data={"csrf_token": token, "login": TRAINEE_ID})
    assert sent.status_code == 302 and sent.headers["Location"].endswith("/account/forgot/confirm")
    form = client.get("/account/forgot/confirm").get_data(as_text=True)
    assert TRAINEE_ID in form  # remembered from the first page, for this browser only
    assert TRAINEE_ID not in client.get_cookie("session").value
    data = {
        "csrf_token": token,
        "login": TRAINEE_ID,
        "code": "000000" if last_code(caplog) != "000000" else "111111",
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
    }
    wrong = client.post("/account/forgot/confirm", data=data)
    assert wrong.status_code == 422 and 'id="e-code"' in wrong.get_data(as_text=True)
    mismatch = client.post(
        "/account/forgot/confirm", data={**data, "code": last_code(caplog), "password_confirm": "x"}
    )
    assert mismatch.status_code == 422 and 'id="e-password_confirm"' in mismatch.get_data(
        as_text=True
    )
    done = client.post("/account/forgot/confirm", data={**data, "code": last_code(caplog)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    sign_in_page(sms_on.test_client(), TRAINEE_ID, NEW_PASSWORD)


def test_forgot_page_without_sms_points_to_the_service_counter(client, fresh_app):
    html = client.get("/account/forgot").get_data(as_text=True)
    assert 'name="login"' not in html and 'href="/account/forgot/confirm"' not in html
    assert client.get("/account/forgot/confirm").status_code == 302


def test_register_page_asks_for_the_code_and_sends_it_without_script(client, sms_on, caplog):
    html = client.get("/register").get_data(as_text=True)
    assert 'name="phone_code"' in html and "js/sms-code.js" in html
    assert 'data-sms-code="/api/v1/auth/phone-code"' in html
    token = csrf_from(html)
    form = {
        "csrf_token": token,
        "name": REGISTRATION["name"],
        "id_number": REGISTRATION["id_number"],
        "phone": REGISTRATION["phone"],
        "district": "500103",
    }
    sent = client.post("/register", data={**form, "send_code": "1"})
    assert sent.status_code == 200
    assert REGISTRATION["id_number"] in sent.get_data(as_text=True)  # the form is kept
    code = last_code(caplog)
    full = {**form, "password": "Study2026ok", "password_confirm": "Study2026ok"}
    wrong = client.post("/register", data={**full, "phone_code": "12"})
    assert wrong.status_code == 422 and 'id="e-phone_code"' in wrong.get_data(as_text=True)
    assert count_rows(sms_on, User) == 0
    done = client.post("/register", data={**full, "phone_code": code})
    assert done.status_code == 302
    assert count_rows(sms_on, User) == 1


def test_register_page_has_no_code_field_with_sms_off(client):
    html = client.get("/register").get_data(as_text=True)
    assert 'name="phone_code"' not in html and "sms-code.js" not in html


# --- staff reset ---------------------------------------------------------------------------


def admin_browser(app):
    make_staff(app, role=Role.ADMIN, username="chief")
    browser = app.test_client()
    sign_in_page(browser, "chief")
    return browser


def test_an_admin_gives_a_temporary_password_that_must_be_changed(fresh_app):
    user_id = make_trainee(fresh_app)
    token = api_token(fresh_app.test_client(), TRAINEE_ID, TRAINEE_PASSWORD)
    admin = admin_browser(fresh_app)
    page = admin.get("/admin/accounts")
    assert page.status_code == 200
    csrf = csrf_from(page.get_data(as_text=True))
    found = admin.post("/admin/accounts", data={"csrf_token": csrf, "id_number": TRAINEE_ID})
    html = found.get_data(as_text=True)
    assert "李*" in html and "110105********1239" in html and "李四" not in html
    assert TRAINEE_ID not in html
    action = f"/admin/accounts/{user_id}/password"
    unchecked = admin.post(action, data={"csrf_token": csrf})
    assert unchecked.status_code == 422
    done = admin.post(action, data={"csrf_token": csrf, "identity_checked": "yes"})
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    temporary = re.search(r'<code class="token">(\w+)</code>', done.get_data(as_text=True)).group(1)
    assert fresh_app.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 401
    # The trainee signs in with it and is sent to choose a password of their own.
    trainee = fresh_app.test_client()
    sign_in_page(trainee, TRAINEE_ID, temporary)
    moved = trainee.get("/profile")
    assert moved.status_code == 302 and moved.headers["Location"].endswith("/account/password")
    form = trainee.get("/account/password").get_data(as_text=True)
    trainee_csrf = csrf_from(form)
    changed = trainee.post(
        "/account/password",
        data={
            "csrf_token": trainee_csrf,
            "current_password": temporary,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 302
    assert trainee.get("/profile").status_code == 200
    [entry] = audit_rows(fresh_app, "password.reset_by_staff")
    assert entry.actor_label == "chief" and entry.subject_id == str(user_id)
    assert temporary not in audit_text(fresh_app)


def test_staff_reset_asks_for_the_admins_password_when_it_is_old(fresh_app, monkeypatch):
    user_id = make_trainee(fresh_app)
    admin = admin_browser(fresh_app)
    csrf = csrf_from(admin.get("/admin/accounts").get_data(as_text=True))
    monkeypatch.setitem(fresh_app.config, "REAUTH_S", 0)
    action = f"/admin/accounts/{user_id}/password"
    prompt = admin.post(action, data={"csrf_token": csrf, "identity_checked": "yes"})
    assert prompt.status_code == 200 and 'name="reauth_password"' in prompt.get_data(as_text=True)
    assert not audit_rows(fresh_app, "password.reset_by_staff")
    done = admin.post(
        action,
        data={"csrf_token": csrf, "identity_checked": "yes", "reauth_password": "Audit2026ok"},
    )
    assert done.status_code == 200 and '<code class="token">' in done.get_data(as_text=True)


def test_only_admins_reach_the_accounts_page(fresh_app):
    make_trainee(fresh_app)
    make_staff(fresh_app)
    auditor = fresh_app.test_client()
    sign_in_page(auditor, "auditor1")
    assert auditor.get("/admin/accounts").status_code == 403
    assert fresh_app.test_client().get("/admin/accounts").status_code == 302


# --- in the browser ------------------------------------------------------------------------


@pytest.mark.browser
def test_at_360px_a_trainee_registers_with_a_texted_code_and_later_resets_by_sms(sms_on, caplog):
    from tests.browser import PHONE as PHONE_SCREEN
    from tests.browser import chromium, live_server, screenshot_dir

    shots = screenshot_dir()

    def fits(page, name):
        overflow = sideways_overflow(page)
        assert overflow <= 0, f"{name} is {overflow}px too wide at 360px"
        if shots:
            page.screenshot(path=shots / f"sms-{name}-360.png", full_page=True)

    with chromium() as browser, live_server(sms_on) as base:
        context = browser.new_context(viewport=PHONE_SCREEN, locale="zh-CN")
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(f"{base}/register")
        page.fill("#f-name", REGISTRATION["name"])
        page.fill("#f-id_number", REGISTRATION["id_number"])
        page.fill("#f-phone", REGISTRATION["phone"])
        page.select_option("#f-district", "500103")
        page.click("#send-code")
        # The script asked the API and stayed on the page: a status line and a countdown.
        page.wait_for_function("() => document.getElementById('sms-status').textContent !== ''")
        assert page.locator("#send-code").is_disabled()
        assert "60" in page.locator("#send-code").text_content()
        assert page.locator("#f-name").input_value() == REGISTRATION["name"]
        fits(page, "register")
        page.fill("#f-phone_code", last_code(caplog))
        page.fill("#f-password", REGISTRATION["password"])
        page.fill("#f-password_confirm", REGISTRATION["password"])
        page.click("button[type=submit].wide")
        page.wait_for_url(lambda url: "/profile" in url)
        assert not [text for text in console if "Content Security Policy" in text]
        context.close()

        context = browser.new_context(viewport=PHONE_SCREEN, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{base}/login")
        page.click("a[href='/account/forgot']")
        fits(page, "forgot")
        page.fill("#f-login", REGISTRATION["id_number"])
        page.click("button[type=submit].wide")
        page.wait_for_url(lambda url: url.endswith("/account/forgot/confirm"))
        assert page.locator("#f-login").input_value() == REGISTRATION["id_number"]
        fits(page, "forgot-confirm")
        page.fill("#f-code", last_code(caplog))
        page.fill("#f-password", NEW_PASSWORD)
        page.fill("#f-password_confirm", NEW_PASSWORD)
        page.click("button[type=submit].wide")
        page.wait_for_url(lambda url: url.endswith("/login"))
        page.fill("#f-login", REGISTRATION["id_number"])
        page.fill("#f-password", NEW_PASSWORD)
        page.click("button[type=submit].wide")
        page.wait_for_url(lambda url: "/login" not in url)
        context.close()


@pytest.mark.browser
def test_at_360px_the_admin_accounts_pages_fit(fresh_app):
    from tests.browser import PHONE as PHONE_SCREEN
    from tests.browser import chromium, live_server, screenshot_dir, sign_in

    make_trainee(fresh_app)
    make_staff(fresh_app, role=Role.ADMIN, username="chief")
    shots = screenshot_dir()
    with chromium() as browser, live_server(fresh_app) as base:
        context = browser.new_context(viewport=PHONE_SCREEN, locale="zh-CN")
        page = context.new_page()
        sign_in(page, base, "chief", "Audit2026ok")
        page.goto(f"{base}/admin/accounts")
        page.fill("#f-id_number", TRAINEE_ID)
        page.click("button[type=submit].wide")
        page.wait_for_selector("input[name=identity_checked]")
        page.check("input[name=identity_checked]")
        for name in ("found", "temporary"):
            overflow = sideways_overflow(page)
            assert overflow <= 0, f"{name} is {overflow}px too wide"
            if shots:
                page.screenshot(path=shots / f"sms-admin-{name}-360.png", full_page=True)
            if name == "found":
                page.click("form[action$='/password'] button[type=submit]")
                page.wait_for_selector("code.token")
        context.close()
