"""Relay key and access token formats: generation, parsing and digests (pure functions).

A relay key is `sk-` + 48 characters of [0-9A-Za-z], the original's length, so keys imported
from it keep working. At rest only SHA-256 digests are kept; the keys are long random strings,
so a plain digest is enough (no salt needed against guessing) and lookups stay a single index hit.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid

from oneapi_site import conf

_ALPHABET = string.ascii_letters + string.digits
KEY_BODY_LENGTH = 48


def generate_key_body() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(KEY_BODY_LENGTH))


def key_prefix() -> str:
    return conf.settings.TOKEN_KEY_PREFIX or "sk-"  # read per relay request: see oneapi_site/conf.py


def strip_key_prefix(raw: str) -> str:
    for prefix in (key_prefix(), "sk-", "laisky-"):
        if prefix and raw.startswith(prefix):
            return raw[len(prefix) :]
    return raw


def split_channel_pin(body: str) -> tuple[str, int | None]:
    """`<key>-<channel id>` pins a channel (admins only); key bodies never contain '-'."""
    head, sep, tail = body.rpartition("-")
    if sep and head and tail.isdigit():
        return head, int(tail)
    return body, None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(body: str) -> str:
    return key_prefix() + body[:6]


def generate_access_token() -> str:
    """Management access token: 32 hex characters, the original's format."""
    return uuid.uuid4().hex
