"""Verification: reference faces, face checks while studying, and the image evidence behind them."""

from flask import Blueprint

bp = Blueprint("verification", __name__, cli_group="faces")

from app.verification import api, cli, jobs, views  # noqa: E402, F401  (routes, job handler)
