"""Learning: enrolments, study sessions, and the study time the server saw and credited."""

from flask import Blueprint

bp = Blueprint("learning", __name__)

from app.learning import api, views  # noqa: E402, F401  (routes register on bp)
