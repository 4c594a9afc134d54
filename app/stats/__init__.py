"""Stats: figures under published definitions, rolled up per period, district and programme;
monthly reports frozen from them; the dashboard and exports."""

from flask import Blueprint

bp = Blueprint("stats", __name__, cli_group="stats")

# Routes, commands and the schedule's tasks (roll-up, monthly freeze) register on import.
from app.stats import (  # noqa: E402, F401
    api,
    cli,
    dashboard,
    exports_jobs,
    models,
    report_cli,
    report_views,
    reports,
    rollup,
    views,
)
