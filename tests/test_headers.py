"""Security headers on every response: every GET route as every role, error pages, the API,
static files; and no page carries inline script or style that the policy would block."""

from __future__ import annotations

import re

import pytest
from flask import Flask, url_for
from werkzeug.routing import BaseConverter

from app import headers
from app.demo.cli import DEMO_STAFF, DEMO_TRAINEE
from app.extensions import db
from tests.conftest import TestConfig, csrf_from, make_app, sign_in_page

pytestmark = pytest.mark.slow  # the demo seed transcodes two short lessons

EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
ROLES = {
    "anonymous": None,
    "trainee": (DEMO_TRAINEE["id_number"], DEMO_TRAINEE["password"]),
    **{role.value: (username, password) for role, username, password, _ in DEMO_STAFF},
}
# What inline code or style in served HTML looks like: a <script> without src, a <style>
# element, a style= attribute, an on...= event handler attribute, a javascript: URL.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style[\s>]|\sstyle=|\son[a-z]+\s*=|javascript:", re.I
)


def assert_secure(response, where: str) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, f"{where}: {name}"
    policy = response.headers.get("Content-Security-Policy", "")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives.get("default-src") == "'self'", where
    assert directives.get("script-src") == "'self'", where
    assert directives.get("style-src") == "'self'", where
    assert directives.get("frame-ancestors") == "'none'", where
    assert directives.get("object-src") == "'none'", where
    assert "unsafe" not in policy, where
    assert "camera=(self)" in response.headers.get("Permissions-Policy", ""), where
    assert "Strict-Transport-Security" not in response.headers, where  # not in development


def numeric(converter: BaseConverter) -> bool:
    """Whether a route argument takes ids (`<int:...>`, whichever converter serves it)."""
    return re.fullmatch(converter.regex, "12") is not None and not re.fullmatch(
        converter.regex, "x"
    )


def page_paths(app: Flask, ids: dict[str, int]) -> list[str]:
    """One address for each GET route: real rows where the route names one, else a value
    that finds nothing (so error pages are covered too)."""
    values = {
        "number": "VS2026-AAAAA-BBBBB",
        "code": "6-31-01",
        "filename": "site.css",
        "key": "faces/1/nothing.jpg",
        "name": "index.m3u8",
    }
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "site.switch_language":
            continue
        arguments = {
            name: ids.get(name, 2_000_000) if numeric(rule._converters[name]) else None
            for name in rule.arguments
        }
        arguments = {
            name: values.get(name, "x") if value is None else value
            for name, value in arguments.items()
        }
        with app.test_request_context():
            paths.append(url_for(rule.endpoint, **arguments))
    return sorted(set(paths))


def test_every_page_and_api_answer_carries_the_security_headers(fresh_app, seeded):
    paths = page_paths(fresh_app, seeded)
    assert len(paths) > 30
    statuses: set[int] = set()
    html_pages = 0
    for role, credentials in ROLES.items():
        client = fresh_app.test_client()
        if credentials:
            sign_in_page(client, *credentials)
        for path in paths:
            response = client.get(path)
            where = f"{role} GET {path} ({response.status_code})"
            assert response.status_code < 500, where
            statuses.add(response.status_code)
            assert_secure(response, where)
            if response.mimetype == "text/html":
                html_pages += 1
                found = INLINE.search(response.get_data(as_text=True))
                assert found is None, f"{where}: inline {found.group(0) if found else ''}"
            response.close()  # static files and media are streamed from open files
    # Pages, redirects to sign in, refusals and missing rows were all among them.
    assert {200, 302, 403, 404} <= statuses
    assert html_pages > 40


def test_error_answers_carry_the_headers_too(fresh_app, client):
    wrong_method = client.delete("/api/v1/occupations")
    assert wrong_method.status_code == 405
    assert_secure(wrong_method, "405")
    page = client.get("/login").get_data(as_text=True)
    assert csrf_from(page)
    refused = client.post("/login", data={"login": "x", "password": "y"})  # no CSRF token
    assert refused.status_code == 400
    assert_secure(refused, "CSRF failure")
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.is_json
    assert_secure(missing, "API 404")
    with client.get("/static/js/player.js") as static:
        assert_secure(static, "static file")


def test_an_unexpected_error_answers_with_the_headers(database_url):
    app = make_app(database_url)

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert_secure(response, "500")
    with app.app_context():
        db.engine.dispose()


def test_signed_links_are_never_passed_on_in_a_referrer(client):
    response = client.get("/media/o/faces/1/x.jpg?exp=1&sig=abc")
    assert response.status_code == 403
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_hsts_in_production_only():
    production = headers.security_headers({"ENV_NAME": "production"})
    assert production["Strict-Transport-Security"] == f"max-age={365 * 24 * 3600}"
    for name in ("development", "test"):
        assert "Strict-Transport-Security" not in headers.security_headers({"ENV_NAME": name})
    assert TestConfig.ENV_NAME == "test"


def test_the_object_store_is_allowed_for_media_only_when_it_serves_them():
    local = headers.content_security_policy({"STORAGE_BACKEND": "local"})
    assert "http" not in local
    minio = headers.content_security_policy(
        {"STORAGE_BACKEND": "minio", "MINIO_ENDPOINT": "files.example.cn", "MINIO_SECURE": "true"}
    )
    directives = dict(part.strip().split(" ", 1) for part in minio.split(";"))
    for name in ("img-src", "media-src", "connect-src"):
        assert "https://files.example.cn" in directives[name]
    for name in ("script-src", "style-src", "default-src", "worker-src"):
        assert "files.example.cn" not in directives[name]
    plain = headers.storage_origin(
        {"STORAGE_BACKEND": "minio", "MINIO_ENDPOINT": "minio:9000", "MINIO_SECURE": "false"}
    )
    assert plain == "http://minio:9000"
