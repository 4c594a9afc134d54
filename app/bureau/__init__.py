"""Bureau: the city's districts, special programmes, targets and trainee groups, and the
district scope that narrows what a district officer sees."""

from flask import Blueprint

bp = Blueprint("bureau", __name__, cli_group="bureau")

from app.bureau import api, cli, models, scope, service  # noqa: E402, F401  (routes, commands, hook)

# Pages name districts in the reader's language, forms' macros included.
bp.add_app_template_global(service.district_name, "district_name")
