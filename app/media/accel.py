"""Signed object links answered before Flask when nginx sends the bytes (MEDIA_ACCEL_REDIRECT).

Behind nginx, a segment request costs the app one signature check, but a Flask request around
it (session, locale, input checks, security headers) costs some 3 ms of CPU: ten times what
nginx spends sending a whole segment, and a hundred times a 64 KiB Range. Here, a WSGI layer in
front of Flask answers a good link to an ordinary object with the X-Accel-Redirect headers at
once. It applies the same check (`service.signature_holds`, the same key, the same scope) and
logs and counts the request as every other; anything else (a face image, which needs the
viewer's session, a bad or expired link, another method) goes on to the Flask view, which
refuses or serves it as always. Off without MEDIA_ACCEL_REDIRECT.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from flask import Flask

from app.media import service
from app.observability import logs, metrics
from media_pipeline import storage as store

access_log = logging.getLogger("veriskill.request")
ROUTE = service.OBJECT_PATH + "<path:key>"  # as the Flask route is named in logs and metrics

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AccelLinks:
    """WSGI middleware: `GET|HEAD /media/o/<key>?exp=&sig=` of a non-personal object with a
    good signature becomes X-Accel-Redirect headers; everything else passes through."""

    def __init__(
        self, wsgi_app: WSGIApp, prefix: str, secret: bytes, *, trust_request_id: bool
    ) -> None:
        self.wsgi_app = wsgi_app
        self.prefix = prefix
        self.secret = secret
        self.trust_request_id = trust_request_id  # nginx's $request_id, behind PROXY_COUNT

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        started = time.perf_counter()
        headers = self.answer(environ)
        if headers is None:
            return self.wsgi_app(environ, start_response)
        request_id = environ.get("HTTP_X_REQUEST_ID") if self.trust_request_id else None
        if request_id is None or not logs.valid_request_id(request_id):
            request_id = logs.new_request_id()
        start_response("200 OK", [*headers, (logs.REQUEST_ID_HEADER, request_id)])
        self.record(environ["REQUEST_METHOD"], request_id, time.perf_counter() - started)
        return [b""]

    def answer(self, environ: dict[str, Any]) -> list[tuple[str, str]] | None:
        """The headers for nginx, or None when Flask must decide."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        path = environ.get("PATH_INFO", "")
        if not path.startswith(service.OBJECT_PATH):
            return None
        key = path[len(service.OBJECT_PATH) :]
        if service.is_personal(key):
            return None
        try:
            store.validate_key(key)
        except store.InvalidKey:
            return None
        query = parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=8)
        exp = query.get("exp", [None])[-1]
        sig = query.get("sig", [None])[-1]
        if not service.signature_holds(self.secret, service.object_scope(key), exp, sig):
            return None
        return service.accel_headers(self.prefix, key)

    @staticmethod
    def record(method: str, request_id: str, seconds: float) -> None:
        """The same access line and latency sample as a request through Flask."""
        metrics.observe_request(ROUTE, method, 200, seconds)
        with logs.bound(request_id=request_id):
            access_log.info(
                "%s %s %s %.1f ms",
                method,
                ROUTE,
                200,
                seconds * 1000,
                extra={
                    "method": method,
                    "route": ROUTE,
                    "status": 200,
                    "duration_ms": round(seconds * 1000, 1),
                    "user_id": None,
                },
            )


def init_app(app: Flask) -> None:
    """Put the fast path in front of the app when nginx sends media (MEDIA_ACCEL_REDIRECT)."""
    prefix = app.config.get("MEDIA_ACCEL_REDIRECT")
    if not prefix:
        return
    with app.app_context():
        secret = service.url_secret()
    trust = bool(app.config.get("PROXY_COUNT"))
    app.wsgi_app = AccelLinks(  # type: ignore[method-assign]
        app.wsgi_app, prefix, secret, trust_request_id=trust
    )
