"""Register, sign in, sign out and profile pages, with CSRF and inline errors."""

from app.identity.models import User
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, count_rows, csrf_from, make_trainee

FORM = {
    "name": "王小明",
    "id_number": TRAINEE_ID,
    "phone": "13800138000",
    "district": "500103",
    "password": "Study2026ok",
    "password_confirm": "Study2026ok",
}


def post_form(client, url, data):
    token = csrf_from(client.get(url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def test_register_page_is_chinese_by_default_with_labelled_fields(client):
    html = client.get("/register").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "实名注册" in html
    for name in ("name", "id_number", "phone", "password", "password_confirm"):
        assert f'<label for="f-{name}">' in html and f'id="f-{name}"' in html


def test_register_shows_inline_errors_and_keeps_values(client, fresh_app):
    response = post_form(
        client, "/register", {**FORM, "id_number": "110105199003071238", "password_confirm": "x"}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="e-id_number"' in html and "校验码不符" in html
    assert 'id="e-password_confirm"' in html
    assert 'aria-invalid="true"' in html
    assert 'value="王小明"' in html  # what was typed stays
    assert "Study2026ok" not in html  # passwords are never echoed
    assert count_rows(fresh_app, User) == 0


def test_register_signs_in_and_profile_shows_only_masked_id(client):
    response = post_form(client, "/register", FORM)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/profile")
    html = client.get("/profile").get_data(as_text=True)
    assert "110105********1239" in html
    assert TRAINEE_ID not in html
    assert "138****8000" in html


def test_duplicate_registration_shows_the_reason_on_the_id_field(client, fresh_app):
    make_trainee(fresh_app)
    response = post_form(client, "/register", FORM)
    assert response.status_code == 409
    assert "已注册" in response.get_data(as_text=True)


def test_form_without_csrf_token_is_refused(client, fresh_app):
    response = client.post("/register", data=FORM)
    assert response.status_code == 400
    assert "csrf_failed" in response.get_data(as_text=True)
    assert count_rows(fresh_app, User) == 0


def test_sign_in_sign_out_round_trip(client, fresh_app):
    make_trainee(fresh_app)
    response = post_form(client, "/login", {"login": TRAINEE_ID, "password": TRAINEE_PASSWORD})
    assert response.status_code == 302
    assert client.get("/profile").status_code == 200
    token = csrf_from(client.get("/profile").get_data(as_text=True))
    assert client.get("/logout").status_code == 405  # signing out changes state: POST only
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/profile").status_code == 302


def test_wrong_password_shows_an_error_then_a_captcha_and_the_address_lock_is_429(
    client, fresh_app
):
    make_trainee(fresh_app)
    for _ in range(5):
        response = post_form(client, "/login", {"login": TRAINEE_ID, "password": "Wrong2026x"})
        assert response.status_code == 401
        assert "密码错误" in response.get_data(as_text=True)
    asked = post_form(client, "/login", {"login": TRAINEE_ID, "password": TRAINEE_PASSWORD})
    assert asked.status_code == 401
    assert 'name="captcha_answer"' in asked.get_data(as_text=True)
    for number in range(14):  # the address's 20th attempt, then it is locked
        post_form(client, "/login", {"login": f"user{number}", "password": "Wrong2026x"})
    locked = post_form(client, "/login", {"login": "someone", "password": TRAINEE_PASSWORD})
    assert locked.status_code == 429
    assert "分钟后重试" in locked.get_data(as_text=True)


def test_profile_requires_sign_in_and_returns_after(client, fresh_app):
    response = client.get("/profile")
    assert response.status_code == 302
    assert "/login?next=%2Fprofile" in response.headers["Location"]
    make_trainee(fresh_app)
    token = csrf_from(client.get("/login?next=/profile").get_data(as_text=True))
    signed_in = client.post(
        "/login?next=//evil.example/x",
        data={"login": TRAINEE_ID, "password": TRAINEE_PASSWORD, "csrf_token": token},
    )
    assert signed_in.headers["Location"] == "/profile"  # off-site targets are ignored


def test_language_switch_sets_english_and_returns(client):
    response = client.get("/lang/en?next=/register")
    assert response.status_code == 302 and response.headers["Location"] == "/register"
    html = client.get("/register").get_data(as_text=True)
    assert '<html lang="en">' in html and "Register with your real name" in html
    assert 'href="/lang/zh?next=/register"' in html
    client.get("/lang/zh")
    assert "实名注册" in client.get("/register").get_data(as_text=True)


def test_unknown_language_is_ignored(client):
    client.get("/lang/fr")
    assert '<html lang="zh-CN">' in client.get("/").get_data(as_text=True)
