"""The Statistics operations of the API document: a year's figures for one slice."""

from __future__ import annotations

from typing import Any

from app.identity.models import Role
from app.openapi.spec import (
    Endpoint,
    Schema,
    array,
    integer,
    json_response,
    nullable,
    obj,
    one_of,
    query,
    ref,
    string,
)
from app.stats.figures import FIGURES

# Staff, district officers included: they get their own district's figures.
STAFF = (Role.AUDITOR, Role.ADMIN, Role.DISTRICT_OFFICER)
NUMBER: Schema = {"type": "number", "description": "Counts are integers; hours and yuan not."}
FIGURE_KEY = one_of(FIGURES, "The figure; its definition is at `/stats/definitions`.")

SCHEMAS: dict[str, Schema] = {
    "StatFigure": obj(
        {
            "key": FIGURE_KEY,
            "value": NUMBER,
            "definition_version": integer("The version of the definition it was computed by."),
        }
    ),
    "StatTarget": obj(
        {
            "key": FIGURE_KEY,
            "target": NUMBER,
            "value": NUMBER,
        }
    ),
    "StatSummary": obj(
        {
            "year": integer(),
            "district": nullable(string("The district's code; null for the whole city.")),
            "figures": array(ref("StatFigure"), "Every figure, in the definitions' order."),
            "targets": array(ref("StatTarget"), "The targets set for this slice, if any."),
        },
        {"programme": integer("The programme asked for, when one was.")},
    ),
}

PARAMETERS = (
    {**query("year", integer(minimum=2000, maximum=2100), "The year."), "required": True},
    query(
        "district",
        string(),
        "A district's code (the whole city when absent). A district officer gets their own "
        "district whether or not they name it, and `out_of_scope` for another.",
    ),
    query("programme", integer(minimum=1), "A programme's id (all programmes when absent)."),
)
ERRORS = ("invalid", "out_of_scope")
DESCRIPTION = (
    "The figures are rolled up from the records every few minutes (`STATS_ROLLUP_S`), each "
    "under its published definition."
)


def _file(media_type: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media_type: {"schema": string(contentMediaType=media_type)}},
    }


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "get",
        "/api/v1/stats/summary",
        "Statistics",
        "A year's figures and targets",
        DESCRIPTION,
        roles=STAFF,
        parameters=PARAMETERS,
        responses={200: json_response("StatSummary", "Every figure of the slice.")},
        errors=ERRORS,
    ),
    Endpoint(
        "get",
        "/api/v1/stats/summary.csv",
        "Statistics",
        "A year's figures as CSV",
        "The summary as one row per figure (key, label, definition_version, value, target), "
        "UTF-8 with a byte order mark. " + DESCRIPTION,
        roles=STAFF,
        parameters=PARAMETERS,
        responses={200: _file("text/csv", "The table.")},
        errors=ERRORS,
    ),
    Endpoint(
        "get",
        "/api/v1/stats/summary.xlsx",
        "Statistics",
        "A year's figures as XLSX",
        "The same table as a spreadsheet; every cell is text or a number, never a formula. "
        + DESCRIPTION,
        roles=STAFF,
        parameters=PARAMETERS,
        responses={
            200: _file(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "The table."
            )
        },
        errors=ERRORS,
    ),
]
