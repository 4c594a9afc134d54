"""Platforms: approval, API tokens shown once, revocation and suspension."""

import sqlalchemy as sa

from app.extensions import db
from app.identity.models import ApiToken, Role
from tests.conftest import bearer, csrf_from, make_platform, make_staff, sign_in_page


def test_cli_creates_platform_and_prints_token_last(runner, client):
    result = runner.invoke(args=["platforms", "create", "匠心职培", "--contact-name", "王工"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("vsk_")
    assert client.get("/api/v1/courses", headers=bearer(token)).status_code == 200
    listed = runner.invoke(args=["platforms", "list"]).output
    assert "匠心职培" in listed and "active" in listed


def test_token_is_stored_hashed_and_listed_by_prefix(runner, fresh_app):
    token = runner.invoke(args=["platforms", "create", "甲平台"]).output.strip().splitlines()[-1]
    with fresh_app.app_context():
        stored = db.session.scalars(sa.select(ApiToken.token_hash)).all()
    assert token not in stored
    listing = runner.invoke(args=["platforms", "tokens", "甲平台"]).output
    assert token[:12] in listing and token not in listing


def test_revoked_token_stops_working(runner, client):
    token = runner.invoke(args=["platforms", "create", "乙平台"]).output.strip().splitlines()[-1]
    token_id = runner.invoke(args=["platforms", "tokens", "乙平台"]).output.split("\t")[0]
    assert runner.invoke(args=["platforms", "revoke", "乙平台", token_id]).exit_code == 0
    response = client.get("/api/v1/courses", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_token"


def test_suspended_platform_tokens_stop_until_activated(runner, client, fresh_app):
    token = make_platform(fresh_app, "丙平台")
    assert runner.invoke(args=["platforms", "suspend", "丙平台"]).exit_code == 0
    assert client.get("/api/v1/courses", headers=bearer(token)).status_code == 401
    assert runner.invoke(args=["platforms", "activate", "丙平台"]).exit_code == 0
    assert client.get("/api/v1/courses", headers=bearer(token)).status_code == 200


def test_duplicate_platform_name_is_refused(runner, fresh_app):
    make_platform(fresh_app, "丁平台")
    result = runner.invoke(args=["platforms", "create", "丁平台"])
    assert result.exit_code != 0


def test_admin_page_approves_platform_and_shows_token_once(client, fresh_app):
    make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    listing = client.get("/admin/platforms")
    assert listing.status_code == 200
    created = client.post(
        "/admin/platforms",
        data={
            "name": "戊平台",
            "contact_name": "李工",
            "csrf_token": csrf_from(listing.get_data(as_text=True)),
        },
    )
    assert created.status_code == 200
    html = created.get_data(as_text=True)
    token = html.split('<code class="token">')[1].split("</code>")[0]
    assert client.get("/api/v1/courses", headers=bearer(token)).status_code == 200
    assert token not in client.get("/admin/platforms").get_data(as_text=True)


def test_admin_pages_refuse_non_admins(client, fresh_app):
    make_staff(fresh_app, username="auditor9")
    sign_in_page(client, "auditor9")
    assert client.get("/admin/platforms").status_code == 403
    assert client.get("/admin/courses").status_code == 403
    anonymous = fresh_app.test_client().get("/admin/courses")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
