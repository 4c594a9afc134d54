"""Jobs: durable background work (transcoding...) on a worker thread or on Celery workers."""

from flask import Blueprint

bp = Blueprint("jobs", __name__, cli_group="jobs")

from app.jobs import cli  # noqa: E402, F401
