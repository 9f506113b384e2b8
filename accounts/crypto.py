"""Encryption at rest for stored credentials (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from ``FIELD_ENCRYPTION_KEY`` (a urlsafe base64 Fernet key; several keys separated by commas rotate:
the first encrypts, all decrypt). Development without the variable derives a key from ``SECRET_KEY``; production
refuses to start without it (see settings).
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionFailed(Exception):
    """The stored value was encrypted with another key, or altered."""


@lru_cache(maxsize=4)
def _fernet(raw_keys: str, secret_key: str) -> MultiFernet:
    keys = [k.strip() for k in raw_keys.split(",") if k.strip()]
    if not keys:
        keys = [base64.urlsafe_b64encode(hashlib.sha256(f"field-encryption:{secret_key}".encode()).digest()).decode()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY or "", settings.SECRET_KEY)


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionFailed("stored credentials cannot be decrypted with the configured key") from exc


def encrypt_json(value: dict) -> str:
    return encrypt_text(json.dumps(value, separators=(",", ":"), sort_keys=True))


def decrypt_json(token: str) -> dict:
    return json.loads(decrypt_text(token))
