"""Sessions that end when they should: a password change ends every other session and token,
deactivating a staff account ends all of them, and decisions on the desk ask for the password
again once the last authentication is older than REAUTH_S, keeping what the auditor typed."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.db import utcnow
from app.extensions import db
from app.identity.models import ApiToken, Role
from app.subsidy.models import Decision
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    csrf_from,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.subsidy.test_desk_pages import failed_check

NEW_PASSWORD = "Fresh2027ok"


def actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)))


def signed_in(app, login=TRAINEE_ID, password=TRAINEE_PASSWORD):
    browser = app.test_client()
    sign_in_page(browser, login, password)
    assert browser.get("/profile").status_code == 200
    return browser


def change_password_form(browser, current, new, confirm=None):
    token = csrf_from(browser.get("/account/password").get_data(as_text=True))
    return browser.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": current,
            "new_password": new,
            "new_password_confirm": new if confirm is None else confirm,
        },
    )


def test_changing_the_password_ends_every_other_session_and_token(fresh_app):
    make_trainee(fresh_app)
    here, elsewhere = signed_in(fresh_app), signed_in(fresh_app)
    copied = fresh_app.test_client()
    copied.set_cookie("session", here.get_cookie("session").value)
    token = api_token(fresh_app.test_client(), TRAINEE_ID, TRAINEE_PASSWORD)
    assert 'href="/account/password"' in here.get("/profile").get_data(as_text=True)

    changed = change_password_form(here, TRAINEE_PASSWORD, NEW_PASSWORD)

    assert changed.status_code == 302 and changed.headers["Location"].endswith("/profile")
    assert here.get("/profile").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/profile").status_code == 302  # every other session ends
    assert copied.get("/profile").status_code == 302  # so does a copy of this one's old cookie
    assert fresh_app.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 401
    signed_in(fresh_app, TRAINEE_ID, NEW_PASSWORD)
    assert "password.changed" in actions(fresh_app)


def test_a_wrong_current_password_or_a_weak_new_one_changes_nothing(fresh_app):
    make_trainee(fresh_app)
    browser = signed_in(fresh_app)
    wrong = change_password_form(browser, "Wrong2026x", NEW_PASSWORD)
    assert wrong.status_code == 401 and 'id="e-current_password"' in wrong.get_data(as_text=True)
    weak = change_password_form(browser, TRAINEE_PASSWORD, "short")
    assert weak.status_code == 422 and 'id="e-new_password"' in weak.get_data(as_text=True)
    mismatch = change_password_form(browser, TRAINEE_PASSWORD, NEW_PASSWORD, "Other2027ok")
    assert mismatch.status_code == 422
    assert 'id="e-new_password_confirm"' in mismatch.get_data(as_text=True)
    assert browser.get("/profile").status_code == 200
    signed_in(fresh_app)  # the old password still works
    assert "reauth.failed" in actions(fresh_app)  # the wrong guess is on record


def test_the_api_changes_the_password_keeping_only_the_calling_token(fresh_app):
    make_trainee(fresh_app)
    client = fresh_app.test_client()
    caller, other = (api_token(client, TRAINEE_ID, TRAINEE_PASSWORD) for _ in range(2))
    browser = signed_in(fresh_app)
    wrong = client.post(
        "/api/v1/me/password",
        json={"current_password": "Wrong2026x", "new_password": NEW_PASSWORD},
        headers=bearer(caller),
    )
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "bad_credentials"
    changed = client.post(
        "/api/v1/me/password",
        json={"current_password": TRAINEE_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(caller),
    )
    assert changed.status_code == 204
    assert client.get("/api/v1/me", headers=bearer(caller)).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 401
    assert browser.get("/profile").status_code == 302
    api_token(client, TRAINEE_ID, NEW_PASSWORD)


def test_deactivating_staff_ends_every_session_and_token_at_once(fresh_app, runner):
    create = ["users", "create", "--role", "auditor", "--username", "aud2"]
    created = runner.invoke(args=[*create, "--password", "Audit2026ok"])
    assert created.exit_code == 0, created.output
    desk = signed_in(fresh_app, "aud2", "Audit2026ok")
    token = api_token(fresh_app.test_client(), "aud2", "Audit2026ok")

    off = runner.invoke(args=["users", "deactivate", "aud2"])

    assert off.exit_code == 0, off.output
    assert desk.get("/audit").status_code == 302
    assert fresh_app.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 401
    refused = fresh_app.test_client().post(
        "/api/v1/auth/token", json={"login": "aud2", "password": "Audit2026ok"}
    )
    assert refused.status_code == 401
    assert runner.invoke(args=["users", "deactivate", "nobody"]).exit_code == 1

    assert runner.invoke(args=["users", "activate", "aud2"]).exit_code == 0
    signed_in(fresh_app, "aud2", "Audit2026ok")
    assert fresh_app.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 401
    logged = actions(fresh_app)
    assert logged.index("account.create") < logged.index("account.deactivated")
    assert logged.index("account.deactivated") < logged.index("account.activated")
    assert "sign_out" not in logged


def test_signing_out_is_audited(fresh_app):
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    desk = signed_in(fresh_app, "auditor1", "Audit2026ok")
    desk.post("/logout", data={"csrf_token": csrf_from(desk.get("/audit").get_data(as_text=True))})
    assert actions(fresh_app)[-2:] == ["sign_in", "sign_out"]


def age_authentication(browser, app, seconds):
    with browser.session_transaction() as session:
        session["authenticated_at"] -= seconds


def test_a_desk_decision_after_reauth_s_asks_the_password_and_keeps_the_reason(study, fresh_app):
    enrollment_id, _ = failed_check(study)
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    desk = signed_in(fresh_app, "auditor1", "Audit2026ok")
    age_authentication(desk, fresh_app, fresh_app.config["REAUTH_S"] + 1)
    token = csrf_from(desk.get(f"/audit/enrollments/{enrollment_id}").get_data(as_text=True))
    url = f"/audit/enrollments/{enrollment_id}/decision"
    reason = '学习记录不完整 "且可疑" <b>'

    prompt = desk.post(url, data={"csrf_token": token, "decision": "reject", "reason": reason})

    html = prompt.get_data(as_text=True)
    assert prompt.status_code == 200 and 'name="reauth_password"' in html
    assert f'action="{url}"' in html
    assert 'value="学习记录不完整 &#34;且可疑&#34; &lt;b&gt;"' in html  # kept, escaped
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Decision)) == 0

    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    fields = {
        k: v.replace("&#34;", '"').replace("&lt;", "<").replace("&gt;", ">")
        for k, v in fields.items()
    }
    wrong = desk.post(url, data={**fields, "reauth_password": "Wrong2026x"})
    assert wrong.status_code == 401 and 'name="reauth_password"' in wrong.get_data(as_text=True)

    done = desk.post(url, data={**fields, "reauth_password": "Audit2026ok"})
    assert done.status_code == 302
    with fresh_app.app_context():
        decision = db.session.scalar(sa.select(Decision).order_by(Decision.id.desc()))
        assert decision.reason == reason
    assert actions(fresh_app)[-2:] == ["reauth", "subsidy.reject"]
    assert "reauth.failed" in actions(fresh_app)
    # Freshly confirmed: the next decision goes straight through.
    fresh = desk.post(url, data={"csrf_token": token, "decision": "approve", "reason": "复核"})
    assert fresh.status_code == 302


def test_the_api_asks_the_password_of_an_old_token_before_a_decision(study, fresh_app):
    enrollment_id, check_id = failed_check(study)
    auditor_id = make_staff(fresh_app, Role.AUDITOR, "auditor1")
    client = fresh_app.test_client()
    token = api_token(client, "auditor1", "Audit2026ok")
    with fresh_app.app_context():
        row = db.session.scalar(sa.select(ApiToken).where(ApiToken.user_id == auditor_id))
        row.created_at = utcnow() - timedelta(seconds=fresh_app.config["REAUTH_S"] + 5)
        db.session.commit()
    url = f"/api/v1/audit/checks/{check_id}/clear"
    asked = client.post(url, json={"reason": "本人，光线过暗"}, headers=bearer(token))
    assert asked.status_code == 401
    assert asked.get_json()["error"]["code"] == "reauth_required"
    wrong = client.post(
        url, json={"reason": "本人", "password": "Wrong2026x"}, headers=bearer(token)
    )
    assert wrong.get_json()["error"]["code"] == "bad_credentials"
    done = client.post(
        url, json={"reason": "本人，光线过暗", "password": "Audit2026ok"}, headers=bearer(token)
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["enrollment_id"] == enrollment_id


# Every page that decides money or identity, with an id that exists or not: the password
# comes first, before anything is looked up or written.
DECISION_PAGES = (
    ("auditor1", "/audit/enrollments/1/decision", {"decision": "approve", "reason": "复核"}),
    ("auditor1", "/audit/checks/1/clear", {"reason": "本人"}),
    ("auditor1", "/audit/flags/1/resolve", {"outcome": "cleared", "note": "不同的人"}),
    ("auditor1", "/audit/references/1/decide", {"decision": "approve", "note": "本人"}),
    ("admin1", "/admin/standards", {"occupation_code": "6-31-01-03", "amount_yuan": "900"}),
)


def test_every_money_or_identity_decision_asks_the_password_after_reauth_s(fresh_app):
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    make_staff(fresh_app, Role.ADMIN, "admin1")
    for username, url, form in DECISION_PAGES:
        desk = signed_in(fresh_app, username, "Audit2026ok")
        age_authentication(desk, fresh_app, fresh_app.config["REAUTH_S"] + 1)
        page = "/audit" if username == "auditor1" else "/admin/standards"
        read = desk.get(page)
        assert read.status_code == 200, page  # reading needs no password
        before = actions(fresh_app)
        token = csrf_from(read.get_data(as_text=True))
        prompt = desk.post(url, data={"csrf_token": token, **form})
        assert prompt.status_code == 200, url
        assert 'name="reauth_password"' in prompt.get_data(as_text=True), url
        assert actions(fresh_app) == before, url  # nothing decided, nothing logged
