"""Serving private objects from local disk behind signed URLs (MinIO serves its own)."""

from __future__ import annotations

from flask import abort, request, send_file

from app.media import bp, service
from media_pipeline import storage as store


@bp.get("/media/o/<path:key>")
def object(key: str):
    if not service.check_signature(
        f"object:{key}", request.args.get("exp"), request.args.get("sig")
    ):
        abort(403)
    backend = service.storage()
    if not isinstance(backend, store.LocalStorage):
        abort(404)
    try:
        path = backend.local_path(key)
    except store.StorageError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=store.content_type_for(key), conditional=True, max_age=300)
    # Segments are immutable under their key, but private: no shared caches. Face images are
    # personal data: not even the viewer's browser keeps them.
    sensitive = key.startswith("faces/")
    response.headers["Cache-Control"] = "no-store" if sensitive else "private, max-age=300"
    return response
