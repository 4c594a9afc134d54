"""MEDIA_ACCEL_REDIRECT: behind nginx, a checked `/media/o/` link is answered with headers only.

The integration test through a real nginx is tests/test_nginx.py; these check the app's half:
the same checks as when it sends the bytes, then X-Accel-Redirect instead of the body.
"""

from __future__ import annotations

import io

import pytest

from app.extensions import db
from app.identity import service as identity
from app.media import service
from app.verification.models import Evidence
from config import ConfigError, check_media_accel
from tests.conftest import TestConfig, make_app
from tests.media.test_face_links import reference, signed_in  # noqa: F401  (fixture)

PREFIX = "/_protected_media/"
SEGMENT = "hls/accel-test/360p/seg_00001.ts"


@pytest.fixture
def accel(fresh_app, monkeypatch):
    monkeypatch.setitem(fresh_app.config, "MEDIA_ACCEL_REDIRECT", PREFIX)
    data = b"\x47" + bytes(range(256)) * 40
    fresh_app.extensions["veriskill.storage"].put_stream(
        SEGMENT, io.BytesIO(data), content_type="video/mp2t", length=len(data)
    )
    return fresh_app


def signed(app, key: str, ttl_s: int = 60, **kwargs) -> str:
    with app.test_request_context():
        return service.object_url(key, ttl_s, **kwargs)


def test_a_valid_segment_link_answers_with_headers_for_nginx_and_no_body(accel):
    with accel.test_client().get(signed(accel, SEGMENT), headers={"Range": "bytes=0-99"}) as r:
        assert r.status_code == 200  # nginx answers the Range itself, from the file
        assert r.data == b""
        assert r.headers["X-Accel-Redirect"] == PREFIX + SEGMENT
        assert r.headers["Content-Type"] == "video/mp2t"
        assert r.headers["Cache-Control"] == "private, max-age=300"


def test_refused_links_never_reach_nginx(accel):
    client = accel.test_client()
    expired = signed(accel, SEGMENT, -1)
    forged = signed(accel, SEGMENT).replace("sig=", "sig=0")
    other = signed(accel, "hls/accel-test/360p/seg_00002.ts")  # signed, but no such object
    for url, status in ((expired, 403), (forged, 403), (other, 404)):
        with client.get(url) as response:
            assert response.status_code == status, url
            assert "X-Accel-Redirect" not in response.headers


def test_a_face_image_goes_through_nginx_only_for_its_viewer_and_is_never_cached(
    accel,
    reference,  # noqa: F811
):
    auditor = signed_in(accel, "auditor1")
    with accel.test_request_context():
        key = db.session.get(Evidence, reference).key
        viewer = identity.find_by_login("auditor1").id
    link = signed(accel, key, viewer_id=viewer)
    with auditor.get(link) as response:
        assert response.status_code == 200 and response.data == b""
        assert response.headers["X-Accel-Redirect"] == PREFIX + key
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"] == "image/jpeg"
    with accel.test_client().get(link) as anonymous:
        assert anonymous.status_code == 403
        assert "X-Accel-Redirect" not in anonymous.headers


def test_without_the_setting_the_app_sends_the_bytes(fresh_app):
    data = b"plain bytes" * 10
    fresh_app.extensions["veriskill.storage"].put_stream(
        SEGMENT, io.BytesIO(data), content_type="video/mp2t", length=len(data)
    )
    with fresh_app.test_client().get(signed(fresh_app, SEGMENT)) as response:
        assert response.data == data
        assert "X-Accel-Redirect" not in response.headers


@pytest.mark.parametrize("prefix", ["_protected", "/_protected", "/?x/", "//"])
def test_a_malformed_prefix_is_refused_at_start(prefix):
    config = TestConfig()
    config.MEDIA_ACCEL_REDIRECT = prefix
    with pytest.raises(ConfigError, match="MEDIA_ACCEL_REDIRECT"):
        check_media_accel(config)


@pytest.fixture
def accel_app(database_url, fresh_app):
    """An app built with the setting, so the fast path sits in front of Flask."""
    app = make_app(database_url, MEDIA_ACCEL_REDIRECT=PREFIX)
    data = b"\x47" * 4096
    app.extensions["veriskill.storage"].put_stream(
        SEGMENT, io.BytesIO(data), content_type="video/mp2t", length=len(data)
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_good_segment_link_is_answered_before_flask(accel_app):
    with accel_app.test_client().get(signed(accel_app, SEGMENT)) as response:
        assert response.status_code == 200 and response.data == b""
        assert response.headers["X-Accel-Redirect"] == PREFIX + SEGMENT
        assert response.headers["Content-Type"] == "video/mp2t"
        assert response.headers["Cache-Control"] == "private, max-age=300"
        assert response.headers["X-Request-ID"]
        # No Flask request ran: none of its after-request headers are there.
        assert "Content-Security-Policy" not in response.headers


def test_the_fast_path_refuses_nothing_itself_flask_does(accel_app):
    """Bad links go on to the view, which refuses them. (A good link to a missing object is
    handed to nginx, which answers 404 from its internal location: tests/test_nginx.py.)"""
    client = accel_app.test_client()
    good = signed(accel_app, SEGMENT)
    for url, status in (
        (signed(accel_app, SEGMENT, -1), 403),
        (good.replace("sig=", "sig=0"), 403),
        (good.replace("exp=", "exp=1"), 403),
        (good.split("?")[0], 403),
    ):
        with client.get(url) as response:
            assert response.status_code == status, url
            assert "X-Accel-Redirect" not in response.headers
            assert "Content-Security-Policy" in response.headers  # Flask answered
    with client.post(good) as posted:
        assert posted.status_code in (400, 405) and "X-Accel-Redirect" not in posted.headers


def test_a_face_image_link_still_goes_through_flask_for_its_viewer(
    accel_app,
    reference,  # noqa: F811
):
    auditor = signed_in(accel_app, "auditor1")
    with accel_app.test_request_context():
        key = db.session.get(Evidence, reference).key
        viewer = identity.find_by_login("auditor1").id
    link = signed(accel_app, key, viewer_id=viewer)
    with auditor.get(link) as response:
        assert response.headers["X-Accel-Redirect"] == PREFIX + key
        assert "Content-Security-Policy" in response.headers
    with accel_app.test_client().get(link) as anonymous:
        assert anonymous.status_code == 403
