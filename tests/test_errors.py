"""Every error is a stable code and a message: JSON for the API, a page for people."""

import re

import pytest
from flask import request

from app.extensions import db
from app.identity import service as identity
from app.identity.models import User
from tests.conftest import (
    bearer,
    count_rows,
    csrf_from,
    make_app,
    make_platform,
    make_staff,
)


def api_token_for(app, user_id: int) -> str:
    with app.test_request_context():
        user = db.session.get(User, user_id)
        token, _ = identity.issue_token(user, ttl_s=3600)
        db.session.commit()
        return token


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {"code": "not_found", "message": response.get_json()["error"]["message"]}
    }


def test_wrong_method_is_json_405(client):
    response = client.get("/api/v1/auth/register")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_page_errors_render_in_the_chosen_language(client):
    chinese = client.get("/no-such-page")
    assert chinese.status_code == 404
    assert "页面不存在" in chinese.get_data(as_text=True)
    client.set_cookie("lang", "en")
    assert "Page not found" in client.get("/no-such-page").get_data(as_text=True)


def test_unexpected_exception_becomes_a_logged_500_without_details(tmp_path, caplog):
    app = make_app(f"sqlite:///{tmp_path / 'bare.db'}")

    @app.get("/api/v1/test-explode")
    def explode():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/v1/test-explode")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal"
    assert "secret internals" not in response.get_data(as_text=True)
    assert "secret internals" in caplog.text


def test_health_check_reaches_the_database(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


# --- no 500 on any input (issue 12): ids, text, JSON depth, 405 -------------------------------

OUT_OF_RANGE_IDS = (0, 2**31, 2**63, 10**30)


def int_routes(app):
    """Every rule with an id in its path, with the methods it answers."""
    for rule in app.url_map.iter_rules():
        if "<int:" in rule.rule:
            yield rule, sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


@pytest.mark.parametrize("value", OUT_OF_RANGE_IDS)
def test_every_id_route_answers_404_to_ids_a_database_cannot_hold(fresh_app, client, value):
    token = make_platform(fresh_app)
    # Pages check the CSRF token before anything else, so send one.
    headers = {**bearer(token), "X-CSRFToken": csrf_from(client.get("/login").get_data(True))}
    checked = 0
    for rule, methods in int_routes(fresh_app):
        path = re.sub(r"<int:[^>]+>", str(value), rule.rule)
        path = re.sub(r"<(?:path:)?[^>]+>", "x", path)
        for method in methods:
            response = client.open(path, method=method, headers=headers)
            assert response.status_code == 404, f"{method} {path}: {response.status_code}"
            checked += 1
    assert checked > 20


def test_a_platform_asking_for_course_2_pow_31_gets_404(fresh_app, client):
    # On PostgreSQL this was a 500: the id does not fit an `integer` column.
    token = make_platform(fresh_app)
    for path in ("/api/v1/courses/2147483648", "/api/v1/lessons/2147483648"):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/courses/2147483647", headers=bearer(token)).status_code == 404


def assert_invalid_text(response, field: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid_text"
    assert list(error["fields"]) == [field]
    assert error["message"] and error["fields"][field]


def test_nul_in_the_occupation_search_is_422_naming_q(client):
    assert_invalid_text(client.get("/api/v1/occupations?q=%00"), "q")
    assert_invalid_text(client.get("/api/v1/occupations/6-31%00"), "code")
    assert client.get("/api/v1/occupations?q=%E7%94%B5%E5%B7%A5").status_code == 200  # 电工


def test_nul_in_a_course_title_is_422_and_creates_nothing(fresh_app, client):
    from app.courses.models import Course

    token = make_platform(fresh_app)
    body = {"occupation_code": "6-31-01-03", "title": "低压\x00电工", "hours": 16}
    assert_invalid_text(client.post("/api/v1/courses", json=body, headers=bearer(token)), "title")
    assert count_rows(fresh_app, Course) == 0


def test_nul_in_login_is_422_on_the_api_and_the_page(client):
    response = client.post("/api/v1/auth/token", json={"login": "admin\x00", "password": "x"})
    assert_invalid_text(response, "login")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"login": "admin\x00", "password": "x", "csrf_token": token}
    )
    assert response.status_code == 422
    assert response.mimetype == "text/html"


def test_nul_in_reasons_is_422(fresh_app, client):
    token = api_token_for(fresh_app, make_staff(fresh_app))
    for path, field in (
        ("/api/v1/audit/checks/1/clear", "reason"),
        ("/api/v1/audit/enrollments/1/decision", "reason"),
    ):
        response = client.post(
            path, json={"decision": "reject", field: "不符\x00合"}, headers=bearer(token)
        )
        assert_invalid_text(response, field)


def test_lone_surrogate_in_json_is_422(client):
    raw = '{"login": "\\ud800", "password": "x"}'
    response = client.post("/api/v1/auth/token", data=raw, content_type="application/json")
    assert_invalid_text(response, "login")


def test_json_nested_50000_deep_is_400_too_deep(client):
    deep = "[" * 50_000 + "]" * 50_000
    response = client.post("/api/v1/auth/token", data=deep, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "too_deep"
    deep_object = '{"a":' * 50_000 + "1" + "}" * 50_000
    response = client.post("/api/v1/courses", data=deep_object, content_type="application/json")
    assert response.status_code in (400, 401)  # the body is read only once signed in


def test_flask_get_json_refuses_deep_json_too(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'bare.db'}")

    @app.post("/api/v1/test-echo")
    def echo():
        return {"depth": str(type(request.get_json()))}

    client = app.test_client()
    deep = "[" * 50_000 + "]" * 50_000
    response = client.post("/api/v1/test-echo", data=deep, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "too_deep"
    text = client.post("/api/v1/test-echo", json={"t": "a\u202eb"})
    assert text.status_code == 422 and text.get_json()["error"]["code"] == "invalid_text"
    assert client.post("/api/v1/test-echo", json=[[["ok"]]]).status_code == 200


def test_405_names_the_allowed_methods_for_the_api_and_pages(client):
    api = client.get("/api/v1/auth/register")
    assert api.status_code == 405
    assert api.headers["Allow"].split(", ").count("POST") == 1
    assert api.get_json()["error"]["code"] == "method_not_allowed"
    page = client.get("/logout")
    assert page.status_code == 405
    assert "POST" in page.headers["Allow"]
    assert page.mimetype == "text/html"


def test_direction_overrides_and_invisible_titles_are_refused(fresh_app, client):
    token = make_platform(fresh_app)
    base = {"occupation_code": "6-31-01-03", "hours": 16}
    for title in ("电工\u202e课程", "\u200b\u200b", "\u2066电工\u2069"):
        response = client.post(
            "/api/v1/courses", json={**base, "title": title}, headers=bearer(token)
        )
        assert_invalid_text(response, "title")
    fine = client.post(
        "/api/v1/courses",
        json={**base, "title": "低压电工 👩‍🔧", "description": "第一行\r\n第二行\t安全"},
        headers=bearer(token),
    )
    assert fine.status_code == 201, fine.get_json()
