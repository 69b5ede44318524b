"""Which requests the lean relay app serves (the rest goes to Django)."""

from __future__ import annotations

# POST endpoints on the hot path. Keys are normalised paths (no trailing slash).
RELAY_ROUTES: dict[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
}


def normalise(path: str) -> str:
    return path.rstrip("/") or "/"


def is_relay_route(method: str, path: str) -> bool:
    return method == "POST" and normalise(path) in RELAY_ROUTES
