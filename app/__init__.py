"""VeriSkill: the application factory."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask, request
from flask_babel import lazy_gettext as _l
from werkzeug.middleware.proxy_fix import ProxyFix

from app.extensions import babel, csrf, db, login_manager, migrate
from config import BASE_DIR, Config, load_config

log = logging.getLogger(__name__)


def create_app(config: Config | None = None, overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from a config object (default: the environment) plus explicit overrides."""
    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
        instance_path=str(Path(BASE_DIR / "instance")),
    )
    app.config.from_object(config or load_config())
    # CSRF is checked in protect_forms below, so the API can decide for itself.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    if overrides:
        app.config.update(overrides)

    if app.config["PROXY_COUNT"]:
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]

    from app.observability import init_app as init_observability

    init_observability(app)  # first: logs are set up and the request id set before other hooks
    init_extensions(app)
    from app.inputs import init_inputs

    init_inputs(app)  # before any route binds the `int` converter
    register_blueprints(app)

    from app.errors import register_error_handlers

    register_error_handlers(app)
    register_template_helpers(app)
    from app.static_files import init_app as init_static_files

    init_static_files(app)
    from app.media.accel import init_app as init_media_accel

    init_media_accel(app)
    from app.headers import init_app as init_security_headers

    init_security_headers(app)
    return app


def init_extensions(app: Flask) -> None:
    from app.i18n import select_locale

    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "identity.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)

    from app.identity.throttle import LoginThrottle, MemoryFailureStore, RedisFailureStore

    store = (
        RedisFailureStore(redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=2))
        if app.config.get("REDIS_URL")
        else MemoryFailureStore()
    )
    from app.jobs.backends import make_backend
    from media_pipeline.storage import storage_from_config

    app.extensions["veriskill.storage"] = storage_from_config(app.config)
    app.extensions["veriskill.jobs"] = make_backend(app)
    app.extensions["veriskill.clock"] = time.time
    app.extensions["veriskill.login_throttle"] = LoginThrottle(
        store,
        max_per_account=app.config["LOGIN_MAX_FAILURES"],
        max_per_address=app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        lockout_s=app.config["LOGIN_LOCKOUT_S"],
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite leaves foreign keys off unless asked; WAL lets the page server read while the
    # in-process worker writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def register_blueprints(app: Flask) -> None:
    from app import (
        audit,
        bureau,
        catalog,
        certificates,
        consent,
        courses,
        demo,
        identity,
        jobs,
        learning,
        media,
        notifications,
        openapi,
        platforms,
        site,
        stats,
        study,
        subsidy,
        verification,
    )
    from app.identity.auth import UNSAFE_METHODS

    for module in (
        site,
        identity,
        bureau,
        catalog,
        platforms,
        courses,
        learning,
        consent,
        verification,
        study,
        media,
        jobs,
        audit,
        certificates,
        subsidy,
        stats,
        notifications,
        demo,
        openapi,
    ):
        app.register_blueprint(module.bp)
    from app.jobs.schedule_cli import schedule_cli
    from app.verification.cli import evidence_cli

    app.cli.add_command(evidence_cli)
    app.cli.add_command(schedule_cli)

    @app.before_request
    def protect_forms() -> None:
        # Pages check CSRF on every unsafe request. The JSON API authenticates with bearer
        # tokens, and checks CSRF itself for callers that use the session cookie (auth.api_user).
        if request.method in UNSAFE_METHODS and not request.path.startswith("/api/"):
            csrf.protect()


def register_template_helpers(app: Flask) -> None:
    from datetime import datetime

    from flask_babel import format_date, format_datetime, get_locale

    from app.i18n import HTML_LANG
    from app.labels import label, template_labels

    @app.template_filter("duration")
    def duration(seconds: float | None) -> str:
        """Seconds as 1:05 or 1:02:05, as people read clocks."""
        total = max(0, int(seconds or 0))
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

    # Stored times are UTC; people read them on the bureau's clock (BABEL_DEFAULT_TIMEZONE).
    when_formats = {"minute": "yyyy-MM-dd HH:mm", "second": "yyyy-MM-dd HH:mm:ss"}

    @app.template_filter("when")
    def when(moment: datetime | str | None, precision: str = "minute") -> str:
        """A stored moment (or its ISO text) on the bureau's clock: `minute` 2026-12-07 19:05,
        `second`, `date` 2026-12-07, `day` as in a sentence (2026年12月7日, December 7, 2026)."""
        if not moment:
            return ""
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        if precision == "day":
            return format_date(moment, "long")  # a datetime is moved to the bureau's zone first
        if precision == "date":
            return format_datetime(moment, "yyyy-MM-dd")
        return format_datetime(moment, when_formats.get(precision, when_formats["minute"]))

    app.add_template_filter(label, "label")
    app.context_processor(template_labels)

    @app.context_processor
    def inject_locale() -> dict[str, Any]:
        locale = str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"])
        return {"lang": locale, "html_lang": HTML_LANG.get(locale, locale)}
