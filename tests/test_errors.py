"""Every error is a stable code and a message: JSON for the API, a page for people."""

from tests.conftest import make_app


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
