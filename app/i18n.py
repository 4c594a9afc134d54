"""Language selection: Simplified Chinese unless the visitor chose English."""

from __future__ import annotations

from flask import current_app, has_request_context, request

LANG_COOKIE = "lang"
HTML_LANG = {"zh": "zh-CN", "en": "en"}


def select_locale() -> str:
    if not has_request_context():  # CLI and workers speak the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in current_app.config["LANGUAGES"]:
        return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]
