"""Serving private objects behind signed URLs: from local disk, and face images from any store
(MinIO serves other objects by presigned URL itself)."""

from __future__ import annotations

from flask import abort, request, send_file

from app.identity.auth import api_user
from app.media import bp, service
from media_pipeline import storage as store


@bp.get("/media/o/<path:key>")
def object(key: str):
    personal = service.is_personal(key)
    # A face image's link opens only for the account it was signed for (session or token).
    viewer = api_user() if personal else None
    scope = service.object_scope(key, viewer.id if viewer is not None else None)
    if personal and viewer is None:
        abort(403)
    if not service.check_signature(scope, request.args.get("exp"), request.args.get("sig")):
        abort(403)
    backend = service.storage()
    if not isinstance(backend, store.LocalStorage):
        if not personal:
            abort(404)  # other objects come straight from the store by presigned URL
        return _personal_from_store(backend, key)
    try:
        path = backend.local_path(key)
    except store.StorageError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=store.content_type_for(key), conditional=True, max_age=300)
    # Segments are immutable under their key, but private: no shared caches. Face images are
    # personal data: not even the viewer's browser keeps them.
    response.headers["Cache-Control"] = "no-store" if personal else "private, max-age=300"
    return response


def _personal_from_store(backend: store.Storage, key: str):
    """A face image out of the object store through the app (small: a few hundred kB)."""
    try:
        stream = backend.open(key)
    except store.ObjectNotFound:
        abort(404)
    response = send_file(stream, mimetype=store.content_type_for(key), max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
