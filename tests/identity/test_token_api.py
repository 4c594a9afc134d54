"""POST /api/v1/auth/token, bearer tokens, and sign-in throttling."""

from datetime import timedelta

import sqlalchemy as sa

from app.db import utcnow
from app.extensions import db
from app.identity.models import ApiToken, Role, User
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, api_token, make_staff, make_trainee


def sign_in(client, login, password, address="10.0.0.1"):
    return client.post(
        "/api/v1/auth/token",
        json={"login": login, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_trainee_signs_in_with_id_number_and_reads_own_profile(client, fresh_app):
    make_trainee(fresh_app)
    response = sign_in(client, TRAINEE_ID.lower(), TRAINEE_PASSWORD)
    assert response.status_code == 200
    body = response.get_json()
    assert body["token"].startswith("vsk_") and body["expires_at"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json()["id_number"] == "110105********1239"
    assert TRAINEE_ID not in me.get_data(as_text=True)


def test_staff_sign_in_with_username(client, fresh_app):
    make_staff(fresh_app, Role.ADMIN, "chief")
    token = api_token(client, "Chief", "Audit2026ok")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.get_json()["role"] == "admin"


def test_bad_credentials_are_401(client, fresh_app):
    make_trainee(fresh_app)
    for login, password in [(TRAINEE_ID, "Wrong2026ok"), ("nobody", "Wrong2026ok")]:
        response = sign_in(client, login, password)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "bad_credentials"


def test_missing_credentials_are_422(client):
    response = client.post("/api/v1/auth/token", json={"login": ""})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"login", "password"}


def test_token_is_stored_only_as_a_hash(client, fresh_app):
    make_trainee(fresh_app)
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    with fresh_app.app_context():
        row = db.session.scalar(sa.select(ApiToken))
        assert token not in {row.token_hash, row.prefix, row.label}
        assert len(row.token_hash) == 64


def test_expired_revoked_and_unknown_tokens_are_401(client, fresh_app):
    make_trainee(fresh_app)
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=auth).status_code == 200

    assert client.get("/api/v1/me", headers={"Authorization": "Bearer vsk_nope"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/api/v1/me").status_code == 401

    with fresh_app.app_context():
        row = db.session.scalar(sa.select(ApiToken))
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    expired = client.get("/api/v1/me", headers=auth)
    assert expired.status_code == 401
    assert expired.get_json()["error"]["code"] == "invalid_token"

    fresh = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    fresh_auth = {"Authorization": f"Bearer {fresh}"}
    assert client.delete("/api/v1/auth/token", headers=fresh_auth).status_code == 204
    assert client.get("/api/v1/me", headers=fresh_auth).status_code == 401


def test_disabled_account_cannot_sign_in_or_use_tokens(client, fresh_app):
    user_id = make_trainee(fresh_app)
    token = api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    with fresh_app.app_context():
        db.session.get(User, user_id).active = False
        db.session.commit()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert sign_in(client, TRAINEE_ID, TRAINEE_PASSWORD).status_code == 401


def test_repeated_failures_ask_a_captcha_for_the_account_from_anywhere(client, fresh_app):
    make_trainee(fresh_app)
    for attempt in range(5):
        assert sign_in(client, TRAINEE_ID, f"Wrong{attempt}pass").status_code == 401
    asked = sign_in(client, TRAINEE_ID, TRAINEE_PASSWORD, address="10.9.9.9")
    assert asked.status_code == 401
    error = asked.get_json()["error"]
    assert error["code"] == "captcha_required"
    assert error["captcha_image"] == f"/login/captcha/{error['captcha_id']}.png"


def test_success_before_the_limit_resets_the_account_count(client, fresh_app):
    make_trainee(fresh_app)
    for _ in range(4):
        sign_in(client, TRAINEE_ID, "Wrong2026ok")
    assert sign_in(client, TRAINEE_ID, TRAINEE_PASSWORD).status_code == 200
    for _ in range(4):
        sign_in(client, TRAINEE_ID, "Wrong2026ok")
    assert sign_in(client, TRAINEE_ID, TRAINEE_PASSWORD).status_code == 200


def test_one_address_guessing_many_accounts_is_locked_out(client, fresh_app):
    make_trainee(fresh_app)
    for number in range(20):
        sign_in(client, f"user{number:03d}", "Wrong2026ok", address="10.6.6.6")
    assert sign_in(client, TRAINEE_ID, TRAINEE_PASSWORD, address="10.6.6.6").status_code == 429
    assert sign_in(client, TRAINEE_ID, TRAINEE_PASSWORD, address="10.1.1.1").status_code == 200
