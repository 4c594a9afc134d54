"""Subsidy: who earned the training subsidy, on what evidence, and the auditors who decide."""

from flask import Blueprint

bp = Blueprint("subsidy", __name__)

from app.subsidy import api, cli, views  # noqa: E402, F401  (routes and commands register on bp)
