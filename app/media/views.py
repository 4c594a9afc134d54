"""Serving private objects behind signed URLs: from local disk (behind nginx with
MEDIA_ACCEL_REDIRECT, by handing the file to nginx), and face images from any store (MinIO
serves other objects by presigned URL itself)."""

from __future__ import annotations

from flask import Response, abort, current_app, request, send_file

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
    accel_prefix = current_app.config.get("MEDIA_ACCEL_REDIRECT")
    if accel_prefix:
        # Behind nginx: headers only, nginx sends the file (app/media/accel.py answers most
        # of these before Flask; face images, which need the viewer, come here).
        return Response(b"", headers=service.accel_headers(accel_prefix, key))
    response = send_file(path, mimetype=store.content_type_for(key), conditional=True, max_age=300)
    response.headers["Cache-Control"] = (
        service.PERSONAL_CACHE_CONTROL if personal else service.OBJECT_CACHE_CONTROL
    )
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
