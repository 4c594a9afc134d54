"""Language selection: Simplified Chinese unless the visitor chose English.

Pages follow the visitor's own choice (the language switch, kept in the `lang` cookie) and are
otherwise in Chinese, the bureau's language: a browser's `Accept-Language` is not asked,
because many trainees' phones are set to English while they read Chinese best, and a page
must not change language between two visits without the visitor asking.

The JSON API (`/api/...`) follows, in this order: the `lang` cookie (our own pages calling the
API, so their messages match the page), the site's default when the call comes from a signed-in
browser without that cookie (the page is in Chinese then), the `Accept-Language` header (a
platform's integration, curl), and Chinese.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request

LANG_COOKIE = "lang"
HTML_LANG = {"zh": "zh-CN", "en": "en"}


def select_locale() -> str:
    if not has_request_context():  # CLI and workers speak the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    languages = current_app.config["LANGUAGES"]
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen and chosen in languages:
        return chosen
    if not request.path.startswith("/api/"):
        return default
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies:
        return default
    # zh-CN, zh-Hans, zh-TW... all read the Chinese catalogue; en-US and en-GB the English.
    return request.accept_languages.best_match(languages) or default
