"""Staff pages of the statistics: the published definitions."""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l

from app.identity.auth import role_required
from app.identity.models import STAFF_ROLES
from app.stats import bp
from app.stats.figures import FIGURES

# How each unit is named beside a figure.
UNIT_LABELS = {"count": _l("count"), "hours": _l("hours"), "yuan": _l("yuan")}


@bp.get("/stats/definitions")
@role_required(*STAFF_ROLES)
def definitions():
    return render_template(
        "stats/definitions.html", figures=list(FIGURES.values()), units=UNIT_LABELS
    )
