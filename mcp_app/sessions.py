"""`Mcp-Session-Id` values: signed, so any replica can check one without shared state.

A session id carries the relay key it was issued to, the negotiated protocol version and a
random nonce, signed with SECRET_KEY (django.core.signing, visible ASCII only as the spec
requires). Ended sessions (DELETE) are remembered in the cache until they would have expired.
https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#session-management
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.core import signing
from django.core.cache import cache

SALT = "oneapi.mcp.session"
MAX_AGE_SECONDS = 7 * 24 * 3600
_ENDED = "mcp:session-ended:"


@dataclass(frozen=True)
class Session:
    key_id: int
    protocol_version: str
    nonce: str

    def call_id(self, request_id: str | int) -> str:
        """A billing id for one tools/call: JSON-RPC ids are unique within a session, so a retry of
        the same request maps to the same charge (never billed twice)."""
        raw = f"{self.nonce}:{type(request_id).__name__}:{request_id}".encode()
        return "mcp-" + hashlib.sha256(raw).hexdigest()[:40]


def issue(*, key_id: int, protocol_version: str) -> tuple[str, Session]:
    session = Session(key_id=key_id, protocol_version=protocol_version, nonce=secrets.token_hex(12))
    token = signing.dumps({"k": key_id, "v": protocol_version, "n": session.nonce}, salt=SALT, compress=False)
    return token, session


async def verify(token: str, *, key_id: int) -> Session | None:
    """The session, if the id is ours, unexpired, not ended, and was issued to this same key."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("k") != key_id:
        return None
    nonce = str(data.get("n", ""))
    if await cache.aget(_ENDED + nonce):
        return None
    return Session(key_id=key_id, protocol_version=str(data.get("v", "")), nonce=nonce)


async def end(session: Session) -> None:
    await cache.aset(_ENDED + session.nonce, True, timeout=MAX_AGE_SECONDS)
