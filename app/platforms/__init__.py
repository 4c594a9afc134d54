"""Platforms: the third-party training providers that push courses in through the API."""

from flask import Blueprint

bp = Blueprint("platforms", __name__, cli_group="platforms")

from app.platforms import cli, views  # noqa: E402, F401  (routes register on bp)
