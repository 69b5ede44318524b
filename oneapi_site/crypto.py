"""Encryption of upstream secrets at rest (channel keys, MCP credentials).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, keyed by a hash of SESSION_SECRET, so
that a database dump alone does not reveal provider keys. Values carry a version prefix so
that a future key rotation can tell old from new.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

PREFIX = "enc:v1:"


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(("oneapi-secrets:" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plain: str) -> str:
    if plain == "":
        return ""
    token = _fernet(settings.SECRET_KEY).encrypt(plain.encode())
    return PREFIX + token.decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # legacy plain value (e.g. just imported); re-encrypted on next save
    try:
        return _fernet(settings.SECRET_KEY).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt a stored secret: was SESSION_SECRET changed?") from exc
