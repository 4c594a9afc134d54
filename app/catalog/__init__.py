"""Catalog: the national occupational classification that courses are filed under."""

from flask import Blueprint

bp = Blueprint("catalog", __name__, cli_group="catalog")

from app.catalog import api, cli, views  # noqa: E402, F401  (routes register on bp)
