"""Log lines an operator can search: JSON in production, text for `make run`, and on every line
the request id (and job) it belongs to.

The context is a contextvar, so each gunicorn thread and each job worker thread has its own:
`bound(request_id=..., job_id=...)` puts fields on every line logged inside it, whoever logs
it (`logging.getLogger(__name__)` as everywhere in the app, nothing to pass around).
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
# What a request id from the proxy may look like: nginx's $request_id is 32 hex digits; other
# proxies send UUIDs. Anything else (too long, spaces, quotes, newlines) is replaced, so a
# client cannot write into the log through it.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
LOG_FORMATS = ("json", "text")

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "veriskill_log_context", default=MappingProxyType({})
)

# Fields every JSON line carries, in this order; the context's fields follow.
JSON_FIELDS = ("asctime", "levelname", "name", "message", "request_id")
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s%(context_text)s"


def new_request_id() -> str:
    """A fresh id, in the shape of nginx's $request_id (32 hex digits)."""
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> bool:
    return bool(value) and REQUEST_ID_PATTERN.fullmatch(value or "") is not None


def current(name: str) -> Any:
    """A field of the current log context (None outside one)."""
    return _context.get().get(name)


def current_request_id() -> str | None:
    return current("request_id")


def bind(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add fields to the current context; give the token to `reset` to take them off again."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    return _context.set(merged)


def reset(token: Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


class ContextFilter(logging.Filter):
    """Copies the context onto each record, so both formats (and any other handler) see it."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for key, value in context.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        record.request_id = getattr(record, "request_id", None) or "-"
        extra = {k: v for k, v in context.items() if k != "request_id"}
        record.context_text = "".join(f" {k}={v}" for k, v in extra.items())
        return True


class _JsonFormatter(JsonFormatter):
    """JSON lines without the text format's helper attribute; times in UTC ISO 8601."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.pop("context_text", None)
        if log_data.get("request_id") == "-":
            log_data["request_id"] = None

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT: `json` (one object per line) or `text` (for people)."""
    if fmt == "json":
        return _JsonFormatter(
            list(JSON_FIELDS), rename_fields=JSON_RENAMES, json_ensure_ascii=False
        )
    return logging.Formatter(TEXT_FORMAT)


class _Handler(logging.StreamHandler):
    """The one handler this module installs on the root logger (found again by its type)."""


def configure(
    fmt: str = "text", level: str = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's lines to stderr in `fmt`, with the context on each line. Safe to
    call again (each app, each worker process): the handler is replaced, never added twice."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def installed_handler() -> logging.StreamHandler | None:
    """The handler `configure` installed, if any (tests point it at a buffer)."""
    return next((h for h in logging.getLogger().handlers if isinstance(h, _Handler)), None)
