"""Which requests the lean relay app serves (the rest goes to Django)."""

from __future__ import annotations

# POST endpoints on the hot path -> caller format (relay.formats). Paths are normalised (no
# trailing slash).
RELAY_ROUTES: dict[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "count_tokens",
}

# Misconfigured clients double the version or add a vendor prefix (the original's fork
# accepts these for Claude clients): serve them rather than answer 404.
ALIASES: dict[str, str] = {
    "/v1/v1/messages": "/v1/messages",
    "/openai/v1/messages": "/v1/messages",
    "/openai/v1/v1/messages": "/v1/messages",
    "/api/v1/v1/messages": "/v1/messages",
    "/v1/v1/chat/completions": "/v1/chat/completions",
    "/v1/v1/responses": "/v1/responses",
}


def normalise(path: str) -> str:
    path = path.rstrip("/") or "/"
    return ALIASES.get(path, path)


def is_relay_route(method: str, path: str) -> bool:
    return method == "POST" and normalise(path) in RELAY_ROUTES
