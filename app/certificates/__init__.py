"""Certificates: issued when an enrolment earns its subsidy, verifiable by anyone by number."""

from flask import Blueprint

bp = Blueprint("certificates", __name__)

from app.certificates import api, views  # noqa: E402, F401  (routes register on bp)
