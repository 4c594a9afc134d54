"""Audit: the tamper-evident log of who saw which face image and who decided what."""

from flask import Blueprint

bp = Blueprint("audit", __name__, cli_group="audit")

from app.audit import cli  # noqa: E402, F401  (commands register on bp)
