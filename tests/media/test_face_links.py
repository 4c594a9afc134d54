"""Face-image links: short-lived, and open only for the staff account that was shown them."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.extensions import db
from app.identity import service as identity
from app.identity.models import Role
from app.media import service
from app.verification.models import Evidence
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    make_app,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.study import enrol_face
from tests.verification.photos import photo


@pytest.fixture
def reference(fresh_app) -> int:
    """A trainee's enrolled face: the id of its evidence row."""
    user_id = make_trainee(fresh_app)
    enrol_face(fresh_app, user_id, photo("obama_1.jpg"))
    with fresh_app.app_context():
        return db.session.scalar(sa.select(Evidence.id).where(Evidence.user_id == user_id))


def signed_in(app, username: str):
    make_staff(app, Role.AUDITOR, username)
    client = app.test_client()
    sign_in_page(client, username)
    return client


def fetch(client, url: str, **kwargs) -> tuple[int, bytes]:
    with client.get(url, **kwargs) as response:
        return response.status_code, response.data


def test_a_face_link_opens_only_for_the_account_it_was_shown_to(fresh_app, reference):
    first = signed_in(fresh_app, "auditor1")
    shown = first.get(f"/audit/evidence/{reference}")
    assert shown.status_code == 302
    link = shown.headers["Location"]
    query = parse_qs(urlsplit(link).query)
    assert 0 < int(query["exp"][0]) - time.time() <= fresh_app.config["EVIDENCE_URL_TTL_S"]

    status, body = fetch(first, link)
    assert status == 200 and body[:2] == b"\xff\xd8"
    # The same account through the API (its token) may open it too.
    token = api_token(fresh_app.test_client(), "auditor1", "Audit2026ok")
    assert fetch(fresh_app.test_client(), link, headers=bearer(token))[0] == 200

    # Anyone else holding the link gets nothing: another auditor, the trainee, nobody at all.
    second = signed_in(fresh_app, "auditor2")
    assert fetch(second, link)[0] == 403
    trainee = fresh_app.test_client()
    sign_in_page(trainee, TRAINEE_ID, TRAINEE_PASSWORD)
    assert fetch(trainee, link)[0] == 403
    assert fetch(fresh_app.test_client(), link)[0] == 403

    # The second auditor's own look is logged and gets a link of their own.
    own = second.get(f"/audit/evidence/{reference}").headers["Location"]
    assert own != link and fetch(second, own)[0] == 200
    with fresh_app.app_context():
        views = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "evidence.view")
        ).all()
    assert len(views) == 2


def test_an_expired_face_link_opens_nothing(fresh_app, reference):
    auditor = signed_in(fresh_app, "auditor1")
    with fresh_app.test_request_context():
        key = db.session.get(Evidence, reference).key
        user = identity.find_by_login("auditor1")
        expired = service.object_url(key, -1, viewer_id=user.id)
        fresh = service.object_url(key, 60, viewer_id=user.id)
    assert fetch(auditor, expired)[0] == 403
    assert fetch(auditor, fresh)[0] == 200


def test_a_face_link_cannot_be_made_for_nobody(fresh_app, reference):
    with fresh_app.test_request_context():
        key = db.session.get(Evidence, reference).key
        with pytest.raises(ValueError, match="signed for the account"):
            service.object_url(key, 60)


def test_face_links_go_through_the_app_on_minio_too(database_url, moto, fresh_app, reference):
    """On MinIO other objects are presigned URLs of the store; a face image is the app's own
    bound link, served from the store through the app."""
    with fresh_app.app_context():
        key = db.session.get(Evidence, reference).key
        with fresh_app.extensions["veriskill.storage"].open(key) as stream:
            data = stream.read()
    app = make_app(
        database_url,
        STORAGE_BACKEND="minio",
        MINIO_ENDPOINT=moto.endpoint,
        MINIO_ACCESS_KEY="moto-access",
        MINIO_SECRET_KEY="moto-secret",
        MINIO_BUCKET="veriskill-face-links",
        MINIO_SECURE="false",
    )
    store = app.extensions["veriskill.storage"]
    store.put_stream(key, io.BytesIO(data), content_type="image/jpeg", length=len(data))
    auditor = signed_in(app, "auditor1")
    link = auditor.get(f"/audit/evidence/{reference}").headers["Location"]
    assert link.startswith("/media/o/faces/")
    status, body = fetch(auditor, link)
    assert status == 200 and body == data
    assert fetch(app.test_client(), link)[0] == 403
    with app.test_request_context():
        poster = service.object_url("lessons/1/poster.jpg", 60)
    assert poster.startswith(f"http://{moto.endpoint}/")
    with app.app_context():
        db.engine.dispose()
