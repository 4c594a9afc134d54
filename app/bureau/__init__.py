"""Bureau: the city's districts, special programmes, targets and trainee groups, and the
district scope that narrows what a district officer sees."""

from flask import Blueprint

bp = Blueprint("bureau", __name__, cli_group="bureau")

# Routes, commands and the scope hook register on import.
from app.bureau import admin, api, cli, models, scope, service, views  # noqa: E402, F401

# Pages name districts in the reader's language, forms' macros included.
bp.add_app_template_global(service.district_name, "district_name")
