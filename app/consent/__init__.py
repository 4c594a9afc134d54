"""Consent: a trainee's recorded consent to face processing, its versioned text, withdrawal."""

from flask import Blueprint

bp = Blueprint("consent", __name__)

from app.consent import api, views  # noqa: E402, F401  (routes register on bp)
