"""Stats: figures under published definitions, rolled up per period, district and programme;
monthly reports frozen from them; the dashboard and exports."""

from flask import Blueprint

bp = Blueprint("stats", __name__, cli_group="stats")

from app.stats import models  # noqa: E402, F401
