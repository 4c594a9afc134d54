"""Platform tokens on the admin page: a required label, created and last-used times in the
bureau's time zone, and a revocation that asks first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.identity.models import ApiToken, Role
from app.platforms.models import Platform
from tests.conftest import bearer, csrf_from, make_platform, make_staff, sign_in_page


@pytest.fixture
def admin(client, fresh_app):
    """An admin's browser session, reading the pages in English (the source texts)."""
    make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    client.get("/lang/en")
    return client


def platform_id(app, name: str) -> int:
    with app.app_context():
        found = db.session.scalar(sa.select(Platform.id).where(Platform.name == name))
        db.session.remove()
        return found


def token_rows(app) -> list[ApiToken]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(ApiToken).order_by(ApiToken.id)))
        db.session.expunge_all()
        db.session.remove()
        return rows


def set_token_times(app, token_id: int, **values: datetime) -> None:
    with app.app_context():
        db.session.execute(sa.update(ApiToken).where(ApiToken.id == token_id).values(**values))
        db.session.commit()
        db.session.remove()


def issue(client, pid: int, label: str):
    csrf = csrf_from(client.get("/admin/platforms").get_data(as_text=True))
    return client.post(f"/admin/platforms/{pid}/tokens", data={"label": label, "csrf_token": csrf})


def token_item(html: str, token_id: int) -> str:
    """The text of one token's entry in the list."""
    match = re.search(rf'<li class="token-item" id="token-{token_id}">(.*?)</li>', html, re.S)
    assert match, f"token {token_id} is not listed"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1)))


def test_new_token_takes_a_trimmed_label_and_shows_never_used(admin, fresh_app):
    make_platform(fresh_app, "甲平台")
    pid = platform_id(fresh_app, "甲平台")
    response = issue(admin, pid, "   production   server  ")
    assert response.status_code == 200
    token = response.get_data(as_text=True).split('<code class="token">')[1].split("</code>")[0]
    newest = token_rows(fresh_app)[-1]
    assert newest.label == "production server"
    assert newest.last_used_at is None
    item = token_item(admin.get("/admin/platforms").get_data(as_text=True), newest.id)
    assert "production server" in item and token[:12] in item
    assert "Never used" in item and "In use" in item
    assert token not in admin.get("/admin/platforms").get_data(as_text=True)


LENGTH = "Use 1 to 100 characters."
INVISIBLE = "Some text contains characters that are not allowed."


@pytest.mark.parametrize(
    ("label", "message"),
    [("", LENGTH), ("   ", LENGTH), ("\u200b\u200b", INVISIBLE), ("x" * 101, LENGTH)],
)
def test_a_bad_label_is_a_clear_error_and_issues_nothing(admin, fresh_app, label, message):
    make_platform(fresh_app, "乙平台")
    pid = platform_id(fresh_app, "乙平台")
    before = len(token_rows(fresh_app))
    response = issue(admin, pid, label)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    if message is INVISIBLE:  # every form refuses invisible text before any view reads it
        assert message in html  # the site-wide page for refused text
    else:
        assert f'<p class="error" id="label-{pid}-error">{message}' in html
        assert 'aria-invalid="true"' in html
    assert '<code class="token">' not in html
    assert len(token_rows(fresh_app)) == before


def test_a_label_of_exactly_100_characters_is_kept_whole(admin, fresh_app):
    make_platform(fresh_app, "丙平台")
    assert issue(admin, platform_id(fresh_app, "丙平台"), "标" * 100).status_code == 200
    assert token_rows(fresh_app)[-1].label == "标" * 100


def test_use_stamps_last_used_at_most_once_a_minute(client, fresh_app):
    token = make_platform(fresh_app, "丁平台")
    assert client.get("/api/v1/courses", headers=bearer(token)).status_code == 200
    (row,) = token_rows(fresh_app)
    first = row.last_used_at
    assert first is not None and datetime.now(UTC) - first < timedelta(seconds=30)
    # Within the minute, using it again writes nothing.
    assert client.get("/api/v1/courses", headers=bearer(token)).status_code == 200
    assert token_rows(fresh_app)[0].last_used_at == first
    # A use more than a minute after the last stamp moves it.
    earlier = first - timedelta(minutes=5)
    set_token_times(fresh_app, row.id, last_used_at=earlier)
    assert client.get("/api/v1/courses", headers=bearer(token)).status_code == 200
    assert token_rows(fresh_app)[0].last_used_at > earlier + timedelta(minutes=4)


def test_a_refused_token_is_not_stamped(client, fresh_app):
    token = make_platform(fresh_app, "戊平台")
    (row,) = token_rows(fresh_app)
    set_token_times(fresh_app, row.id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert client.get("/api/v1/courses", headers=bearer(token)).status_code == 401
    assert token_rows(fresh_app)[0].last_used_at is None


def test_list_shows_times_in_the_bureaus_time_zone(admin, fresh_app):
    make_platform(fresh_app, "己平台")
    (row,) = token_rows(fresh_app)
    # 16:30 UTC is half past midnight the next day in Shanghai.
    set_token_times(
        fresh_app,
        row.id,
        created_at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC),
        last_used_at=datetime(2026, 3, 2, 16, 45, tzinfo=UTC),
        expires_at=datetime(2099, 3, 1, 16, 30, tzinfo=UTC),
    )
    item = token_item(admin.get("/admin/platforms").get_data(as_text=True), row.id)
    assert "2026-03-02 00:30" in item  # created
    assert "2026-03-03 00:45" in item  # last used
    assert "2099-03-02 00:30" in item  # expires
    assert "16:30" not in item and "4:30" not in item


def test_expired_and_revoked_tokens_say_so_and_offer_no_revoke(admin, fresh_app):
    make_platform(fresh_app, "庚平台")
    pid = platform_id(fresh_app, "庚平台")
    issue(admin, pid, "second")
    first, second = token_rows(fresh_app)
    set_token_times(fresh_app, first.id, expires_at=datetime.now(UTC) - timedelta(days=1))
    set_token_times(fresh_app, second.id, revoked_at=datetime.now(UTC))
    html = admin.get("/admin/platforms").get_data(as_text=True)
    assert "Expired" in token_item(html, first.id) and "revoked" in token_item(html, second.id)
    assert f"/tokens/{first.id}/revoke" not in html and f"/tokens/{second.id}/revoke" not in html


def test_revoking_asks_for_confirmation_first(admin, fresh_app):
    token = make_platform(fresh_app, "辛平台")
    pid = platform_id(fresh_app, "辛平台")
    (row,) = token_rows(fresh_app)
    listing = admin.get("/admin/platforms").get_data(as_text=True)
    assert f'href="/admin/platforms/{pid}/tokens/{row.id}/revoke"' in listing
    csrf = csrf_from(listing)
    url = f"/admin/platforms/{pid}/tokens/{row.id}/revoke"
    # A POST without the confirmation revokes nothing: it goes to the question.
    for data in ({"csrf_token": csrf}, {"csrf_token": csrf, "confirm": "no"}):
        response = admin.post(url, data=data)
        assert response.status_code == 303 and response.headers["Location"].endswith(url)
    assert token_rows(fresh_app)[0].revoked_at is None
    assert admin.get("/api/v1/courses", headers=bearer(token)).status_code == 200
    question = admin.get(url).get_data(as_text=True)
    assert "Revoke the token “测试” of 辛平台?" in question
    assert 'name="confirm" value="yes"' in question and row.prefix in question
    done = admin.post(url, data={"csrf_token": csrf, "confirm": "yes"}, follow_redirects=True)
    assert "Token “测试” revoked." in done.get_data(as_text=True)
    assert token_rows(fresh_app)[0].revoked_at is not None
    refused = admin.get("/api/v1/courses", headers=bearer(token))
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "invalid_token"


def test_another_platforms_token_cannot_be_revoked_through_this_one(admin, fresh_app):
    make_platform(fresh_app, "壬平台")
    other = make_platform(fresh_app, "癸平台")
    pid = platform_id(fresh_app, "壬平台")
    theirs = token_rows(fresh_app)[-1]
    csrf = csrf_from(admin.get("/admin/platforms").get_data(as_text=True))
    url = f"/admin/platforms/{pid}/tokens/{theirs.id}/revoke"
    assert admin.get(url).status_code == 404
    assert admin.post(url, data={"csrf_token": csrf, "confirm": "yes"}).status_code == 404
    assert admin.get("/api/v1/courses", headers=bearer(other)).status_code == 200


def test_approval_names_the_first_token(admin, fresh_app):
    csrf = csrf_from(admin.get("/admin/platforms").get_data(as_text=True))
    refused = admin.post(
        "/admin/platforms", data={"name": "子平台", "label": " ", "csrf_token": csrf}
    )
    assert refused.status_code == 422 and "Use 1 to 100 characters." in refused.get_data(
        as_text=True
    )
    assert platform_id(fresh_app, "子平台") is None  # nothing half-written
    created = admin.post(
        "/admin/platforms", data={"name": "子平台", "label": "main server", "csrf_token": csrf}
    )
    assert created.status_code == 200
    assert [row.label for row in token_rows(fresh_app)] == ["main server"]


def test_cli_needs_a_label_and_lists_last_use(runner, fresh_app):
    make_platform(fresh_app, "丑平台")
    assert runner.invoke(args=["platforms", "token", "丑平台"]).exit_code != 0
    assert runner.invoke(args=["platforms", "token", "丑平台", "--label", "  "]).exit_code != 0
    made = runner.invoke(args=["platforms", "token", "丑平台", "--label", "staging"])
    assert made.exit_code == 0, made.output
    listing = runner.invoke(args=["platforms", "tokens", "丑平台"]).output
    assert "never used\tstaging" in listing
