"""Security headers on every response: a strict Content-Security-Policy and its companions.

One small `after_request` hook rather than an extension (flask-talisman): the policy needs one
value only the app knows (the object store's origin, which serves presigned posters, captions
and segments in production), HSTS goes out in production only, and cookies' Secure flag and
HTTPS redirects are already the proxy's and config's business. What is sent is all here.

No page runs inline script or style: scripts are files under static/js and take their data
from `data-` attributes, so `script-src 'self'` holds with no nonce and no 'unsafe-inline'.
"""

from __future__ import annotations

from flask import Flask, Response, request

# A year, as HSTS preload lists expect; browsers ignore the header over plain HTTP.
HSTS_MAX_AGE_S = 365 * 24 * 3600


def storage_origin(config: dict) -> str | None:
    """The origin presigned object URLs point at (MinIO), or None when the app serves them."""
    if str(config.get("STORAGE_BACKEND") or "").lower() != "minio":
        return None
    endpoint = str(config.get("MINIO_ENDPOINT") or "").strip().rstrip("/")
    if not endpoint:
        return None
    secure = str(config.get("MINIO_SECURE", "true")).strip().lower() not in ("0", "false", "no")
    return f"{'https' if secure else 'http'}://{endpoint}"


def content_security_policy(config: dict) -> str:
    store = storage_origin(config)
    extra = f" {store}" if store else ""
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        # Posters come from the store; nothing draws data: images.
        "img-src": f"'self'{extra}",
        # hls.js plays through Media Source Extensions (a blob: URL); segments and captions
        # come from the store.
        "media-src": f"'self' blob:{extra}",
        "connect-src": f"'self'{extra}",
        # hls.js transmuxes in a worker it builds from a blob: URL.
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(config: dict) -> dict[str, str]:
    """The headers every response carries (before the per-request Referrer-Policy)."""
    headers = {
        "Content-Security-Policy": content_security_policy(config),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        # Trainees' faces are checked through the camera on our own pages; nothing else is used.
        "Permissions-Policy": (
            "camera=(self), microphone=(), geolocation=(), payment=(), usb=(), "
            "display-capture=(), fullscreen=(self)"
        ),
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if config.get("ENV_NAME") == "production":
        headers["Strict-Transport-Security"] = f"max-age={HSTS_MAX_AGE_S}"
    return headers


def init_app(app: Flask) -> None:
    headers = security_headers(app.config)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if request.args.get("sig"):
            # A signed link is a secret of its own: whatever it loads must not pass it on.
            response.headers["Referrer-Policy"] = "no-referrer"
        return response
