"""Anthropic Messages (type 14) and Claude-compatible upstreams (type 52).

https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

from typing import Any

from ...converters.messages_upstream import fold_system_messages
from ...snapshot import ChannelEntry
from ..base import Adaptor

API_VERSION = "2023-06-01"  # https://docs.anthropic.com/en/api/versioning


class AnthropicAdaptor(Adaptor):
    default_format = "messages"

    def adapt_passthrough(self, payload: dict[str, Any], *, wire: str, channel: ChannelEntry) -> dict[str, Any] | None:
        """Claude Code (v2.1.154+) puts `role: "system"` messages mid-conversation, which the
        Messages API refuses with a 400; fold them into the next user turn, as the converter does
        for every other source. (The fork's issue #350.)"""
        messages = payload.get("messages")
        if not isinstance(messages, list) or not any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
            return None
        return fold_system_messages(payload)

    def build_url(self, channel: ChannelEntry, endpoint: str, *, model: str, stream: bool, wire: str) -> str:
        if endpoint != "chat":
            raise ValueError(f"Anthropic has no {endpoint} endpoint")
        base = channel.base_url
        return (base if base.endswith("/v1") else base + "/v1") + "/messages"

    def build_headers(self, channel: ChannelEntry, *, wire: str) -> dict[str, str]:
        headers = {"x-api-key": channel.key, "anthropic-version": API_VERSION, "content-type": "application/json"}
        beta = channel.config.get("anthropic_beta")
        if isinstance(beta, str) and beta:
            headers["anthropic-beta"] = beta
        return headers
