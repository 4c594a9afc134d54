"""Per request: the request id, its log context, one access line and one latency sample."""

from __future__ import annotations

import contextlib
import logging
import time

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, request

from app.observability import logs, metrics

access_log = logging.getLogger("veriskill.request")


def incoming_request_id(app: Flask) -> str | None:
    """X-Request-ID as sent by the reverse proxy (nginx sets `$request_id`), trusted only when
    a proxy is configured (PROXY_COUNT) and only in the expected shape."""
    if not app.config.get("PROXY_COUNT"):
        return None
    value = request.headers.get(logs.REQUEST_ID_HEADER)
    return value if logs.valid_request_id(value) else None


def start_request() -> None:
    request_id = incoming_request_id(current_app) or logs.new_request_id()
    g.request_id = request_id
    g.request_started = time.perf_counter()
    g.log_token = logs.bind(request_id=request_id)


def _user_id() -> int | None:
    """The caller, where the request already established one (never loads it just to log)."""
    user = g.get("api_user")
    if user is None and "_login_user" in g:
        user = g._login_user
    # A signed-in caller is a mapped row, whose identity key outlives the commit that expired
    # it: reading `user.id` (or `is_authenticated`) would load the whole user again, and check
    # out a connection, just to write a log line. Anyone else (anonymous) is no row.
    state = sa.inspect(user, raiseerr=False) if user is not None else None
    if state is None or not state.identity:
        return None
    return int(state.identity[0])


def finish_request(response: Response) -> Response:
    """Send the id back, log one access line and count the request's latency by route."""
    request_id = g.get("request_id")
    if request_id is None:  # before_request did not run (an earlier hook answered)
        return response
    response.headers[logs.REQUEST_ID_HEADER] = request_id
    seconds = time.perf_counter() - g.request_started
    route = request.url_rule.rule if request.url_rule is not None else None
    metrics.observe_request(route, request.method, response.status_code, seconds)
    access_log.info(
        "%s %s %s %.1f ms",
        request.method,
        route or metrics.UNMATCHED_ROUTE,
        response.status_code,
        seconds * 1000,
        extra={
            "method": request.method,
            "route": route or metrics.UNMATCHED_ROUTE,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 1),
            "user_id": _user_id(),
        },
    )
    return response


def leave_request(_error: BaseException | None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        # Set in another context (a copied one): nothing to undo here.
        with contextlib.suppress(ValueError):
            logs.reset(token)
