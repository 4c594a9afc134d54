"""Bureau: the city's districts, special programmes, targets and trainee groups, and the
district scope that narrows what a district officer sees."""

from flask import Blueprint

bp = Blueprint("bureau", __name__, cli_group="bureau")

from app.bureau import cli, models, scope  # noqa: E402, F401  (commands, the scope hook)
