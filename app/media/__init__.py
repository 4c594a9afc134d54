"""Media: private object storage for the app, short-lived signed URLs, and serving bytes."""

from flask import Blueprint

bp = Blueprint("media", __name__)

from app.media import views  # noqa: E402, F401  (routes register on bp)
