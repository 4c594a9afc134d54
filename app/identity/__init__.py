"""Identity: real-name accounts, roles, passwords, API tokens and sign-in throttling."""

from flask import Blueprint

bp = Blueprint("identity", __name__, cli_group="users")

from app.identity import api, cli, views  # noqa: E402, F401  (routes register on bp)
