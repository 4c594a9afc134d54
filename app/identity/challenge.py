"""Image captchas asked of an account after repeated failed sign-ins.

Drawn offline by the `captcha` package (its own font, nothing fetched). The expected answer
stays on the server, in the throttle's store, for CAPTCHA_TTL_S, and is used up by the first
answer given, right or wrong, so one picture buys one password guess.
"""

from __future__ import annotations

import hmac
import secrets

from captcha.image import ImageCaptcha
from flask import current_app

from app.identity.throttle import LoginThrottle

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: letters people confuse in a distorted picture.
ALPHABET = "ACDEFHJKMNPRTUVWXY34679"
LENGTH = 5
CAPTCHA_TTL_S = 300
WIDTH, HEIGHT = 160, 60


def _throttle() -> LoginThrottle:
    return current_app.extensions["veriskill.login_throttle"]


def new() -> str:
    """A fresh captcha; returns its id (the picture is at identity.captcha_image)."""
    captcha_id = secrets.token_urlsafe(18)
    _throttle().keep_captcha(captcha_id, _answer(), CAPTCHA_TTL_S)
    return captcha_id


def _answer() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def renew(captcha_id: str) -> bool:
    """Another picture for a live captcha (the same id, a new answer): a trainee who cannot
    read one asks for the next without spending a password guess. False once it is used or
    expired."""
    if not _valid_id(captcha_id) or _throttle().captcha_text(captcha_id) is None:
        return False
    _throttle().keep_captcha(captcha_id, _answer(), CAPTCHA_TTL_S)
    return True


def image(captcha_id: str) -> bytes | None:
    """The PNG of a live captcha, or None once it is used or expired."""
    answer = _throttle().captcha_text(captcha_id) if _valid_id(captcha_id) else None
    if answer is None:
        return None
    return ImageCaptcha(width=WIDTH, height=HEIGHT).generate(answer, format="png").getvalue()


def solved(captcha_id: object, answer: object) -> bool:
    """Whether answer matches the captcha; the captcha is used up either way."""
    if not isinstance(captcha_id, str) or not _valid_id(captcha_id):
        return False
    expected = _throttle().use_captcha(captcha_id)
    if expected is None or not isinstance(answer, str):
        return False
    given = "".join(answer.split()).upper()
    return hmac.compare_digest(given.encode(), expected.encode())


def _valid_id(captcha_id: str) -> bool:
    return 10 <= len(captcha_id) <= 64 and all(c.isalnum() or c in "-_" for c in captcha_id)
