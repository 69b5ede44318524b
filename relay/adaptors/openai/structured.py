"""Structured output for OpenAI-compatible upstreams that lack `json_schema` (DeepSeek, ...).

They accept `response_format: {"type": "json_object"}` only
(https://api-docs.deepseek.com/guides/json_mode), so the schema moves into the instructions and
the caller still gets JSON with its fields. Which channels: DeepSeek's type, or any channel
whose config says `"json_schema": false`.
"""

from __future__ import annotations

import json
from typing import Any

from ...snapshot import ChannelEntry

NO_JSON_SCHEMA_TYPES = {36}  # DeepSeek


def lacks_json_schema(channel: ChannelEntry) -> bool:
    configured = channel.config.get("json_schema")
    if isinstance(configured, bool):
        return not configured
    return channel.type in NO_JSON_SCHEMA_TYPES


def downgrade_json_schema(payload: dict[str, Any]) -> dict[str, Any] | None:
    """A Chat body with json_schema -> json_object plus the schema in a system message; None
    when there is nothing to change."""
    fmt = payload.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
    schema = spec.get("schema") or {"type": "object"}
    instruction = (
        "Respond ONLY with a compact JSON object, no prose and no code fence, that matches this "
        f"JSON schema: {json.dumps(schema, separators=(',', ':'))}"
    )
    messages = list(payload.get("messages") or [])
    return {**payload, "response_format": {"type": "json_object"}, "messages": [{"role": "system", "content": instruction}, *messages]}
