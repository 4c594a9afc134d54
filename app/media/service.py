"""Signed URLs for private objects.

On MinIO an object URL is a presigned GET, so the bytes never pass through Python. On local
disk it is the app's own `/media/o/<key>` with an expiry and an HMAC, served with Range support.
Scopes (`lesson-hls:12`) sign a family of app routes, such as a lesson's playlists, at once.

Face images are personal data: their links are always the app's own, on MinIO too, and are
signed for the one staff account that was shown them (whose look is in the audit log), so a
link copied out of the desk opens nothing in anyone else's browser.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from flask import current_app, url_for

from app import security
from media_pipeline import storage as store

URL_KEY = "media-url"
PERSONAL_PREFIX = "faces/"
OBJECT_PATH = "/media/o/"
# Segments are immutable under their key, but private: no shared caches. Face images are
# personal data: not even the viewer's browser keeps them.
OBJECT_CACHE_CONTROL = "private, max-age=300"
PERSONAL_CACHE_CONTROL = "no-store"


def is_personal(key: str) -> bool:
    return key.startswith(PERSONAL_PREFIX)


def object_scope(key: str, viewer_id: int | None = None) -> str:
    """What an object link signs: the key, and for a face image the account that may open it."""
    return f"object:{key}" if viewer_id is None else f"object:{key}|viewer:{viewer_id}"


def storage() -> store.Storage:
    return current_app.extensions["veriskill.storage"]


def _secret() -> bytes:
    return security.subkey(URL_KEY)


def signed_query(scope: str, ttl_s: int) -> dict[str, str]:
    expires_at = int(time.time()) + ttl_s
    return {"exp": str(expires_at), "sig": store.sign(_secret(), scope, expires_at)}


def check_signature(scope: str, exp: str | None, sig: str | None) -> bool:
    return signature_holds(_secret(), scope, exp, sig)


def url_secret() -> bytes:
    """The key object links are signed with (for code that runs outside a request)."""
    return _secret()


def signature_holds(secret: bytes, scope: str, exp: str | None, sig: str | None) -> bool:
    """The one check of a signed link: the HMAC over scope and expiry, not yet expired."""
    if not exp or not sig or not exp.isdigit():
        return False
    return store.verify(secret, scope, int(exp), sig, int(time.time()))


def accel_headers(prefix: str, key: str) -> list[tuple[str, str]]:
    """The answer that hands an object to nginx (X-Accel-Redirect to its internal location
    `prefix`, MEDIA_ACCEL_REDIRECT), once its link was checked: nginx sends the file, with
    Range and conditional requests, and keeps this Content-Type and Cache-Control."""
    cache_control = PERSONAL_CACHE_CONTROL if is_personal(key) else OBJECT_CACHE_CONTROL
    return [
        ("Content-Type", store.content_type_for(key)),
        ("Cache-Control", cache_control),
        ("X-Accel-Redirect", prefix + quote(key)),
        ("Content-Length", "0"),
    ]


def object_url(
    key: str, ttl_s: int, *, external: bool = False, viewer_id: int | None = None
) -> str:
    """A URL that fetches one private object until it expires; a face image's only for the
    signed-in account `viewer_id`."""
    if is_personal(key):
        if viewer_id is None:
            raise ValueError("a face image's link is signed for the account that views it")
        query = signed_query(object_scope(key, viewer_id), ttl_s)
        return url_for("media.object", key=key, _external=external, **query)
    content_type = store.content_type_for(key)
    presigned = storage().presigned_get(key, ttl_s, content_type=content_type)
    if presigned is not None:
        return presigned
    return url_for(
        "media.object", key=key, _external=external, **signed_query(object_scope(key), ttl_s)
    )


def media_ttl_s(duration_s: float | None = 0) -> int:
    """Long enough to play a whole video once, however short the base lifetime."""
    return int(current_app.config["MEDIA_URL_TTL_S"] + 2 * (duration_s or 0))
