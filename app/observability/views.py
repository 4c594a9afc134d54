"""`/metrics`, for the operator's Prometheus only."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, request
from prometheus_client import CONTENT_TYPE_LATEST

from app.extensions import real_app
from app.observability import metrics

bp = Blueprint("observability", __name__)


@bp.get("/metrics")
def scrape():
    """The metrics, to an allowed address (METRICS_ALLOW) or a bearer METRICS_TOKEN. Anyone
    else gets the ordinary 404, as for a path that does not exist: nothing tells a visitor
    that something is there."""
    app = real_app()
    if not metrics.operator_request(app, request):
        abort(404)
    body = metrics.exposition(metrics.queue_families(datetime.now(UTC)))
    return body, 200, {"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
