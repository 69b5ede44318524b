"""Reading usage objects of the upstream formats into billing's Usage."""

from __future__ import annotations

from typing import Any

from billing.pricing import Usage


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def usage_from_openai(usage: dict[str, Any]) -> Usage:
    """Chat Completions / Embeddings usage. `prompt_tokens` includes cached tokens.
    https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage"""
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        cached_tokens=cached,
    )
