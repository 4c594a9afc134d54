"""Keys derived from DATA_KEY: keyed digests for lookups and encryption for sensitive values.

Each purpose gets its own subkey, so a digest made for one use cannot be replayed as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


@cache
def _subkey(data_key: str, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(data_key.encode())


def subkey(purpose: str) -> bytes:
    return _subkey(current_app.config["DATA_KEY"], purpose)


def keyed_digest(purpose: str, value: str) -> str:
    """A stable HMAC-SHA256 of value: equal inputs match, and the input cannot be read back."""
    return hmac.new(subkey(purpose), value.encode(), hashlib.sha256).hexdigest()


def _fernet(purpose: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(subkey(purpose)))


def encrypt(purpose: str, value: str) -> str:
    return _fernet(purpose).encrypt(value.encode()).decode()


def decrypt(purpose: str, token: str) -> str:
    return _fernet(purpose).decrypt(token.encode()).decode()
