"""Helpers shared by the `flask ...` commands."""

from __future__ import annotations

import click

from app.errors import AppError


def click_error(error: AppError) -> click.ClickException:
    """A domain error as a CLI failure: its message, then each bad field."""
    details = "; ".join(f"{name}: {text}" for name, text in (error.fields or {}).items())
    return click.ClickException(f"{error.message} {details}".strip())
