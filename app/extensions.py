"""Flask extensions, created unbound and bound to an app in the factory."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import Flask, current_app
from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from werkzeug.local import LocalProxy

from app.db import Base

db = SQLAlchemy(model_class=Base)
if TYPE_CHECKING:
    # Flask-SQLAlchemy builds db.Model at run time from Base's bases and its own mixins, which
    # a type checker cannot follow: to it the models are what they are declared as, Base's.
    Model = Base
else:
    Model = db.Model
migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def real_app() -> Flask:
    """The application itself, not the `current_app` proxy bound to this context: what a
    thread, a worker or a server started from here must hold on to. (Flask types the proxy as
    a Flask, which hides the proxy's own method.)"""
    return cast("LocalProxy[Flask]", current_app)._get_current_object()
