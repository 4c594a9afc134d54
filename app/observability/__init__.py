"""Observability: structured logs with a request id, Prometheus metrics, readiness.

`init_app` wires it into the factory: log format (LOG_FORMAT, LOG_LEVEL), a request id per
request (a trusted proxy's X-Request-ID or a new one; sent back in the response and put on
every log line), one access line and one latency sample per request, and the `/metrics`
endpoint. Jobs carry the id of the request that queued them (`app.jobs.service.enqueue`);
`jobs.JobRun` puts it back on the worker's lines while the job runs.

Nothing here imports prometheus-client at import time: the gunicorn master imports
`procdir` to prepare PROMETHEUS_MULTIPROC_DIR before any process chooses how to count.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.observability import logs, requests, views

    logs.configure(app.config.get("LOG_FORMAT") or "text", app.config.get("LOG_LEVEL") or "INFO")
    app.before_request(requests.start_request)
    app.after_request(requests.finish_request)
    app.teardown_request(requests.leave_request)
    app.register_blueprint(views.bp)
