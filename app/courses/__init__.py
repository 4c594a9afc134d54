"""Courses: what platforms publish, their lessons, uploads, and the review workflow."""

from flask import Blueprint

bp = Blueprint("courses", __name__, cli_group="courses")

from app.courses import api, cli, pipeline, views  # noqa: E402, F401  (routes register on bp)
