"""Site: the home page, the language switch and the health check."""

from flask import Blueprint

bp = Blueprint("site", __name__)

from app.site import views  # noqa: E402, F401  (routes register on bp)
