"""Notifications: an in-app inbox per account, and a text message where SMS is configured."""

from flask import Blueprint

bp = Blueprint("notifications", __name__)

from app.notifications import api, jobs, views  # noqa: E402, F401  (routes, job handler)
