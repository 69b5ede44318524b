"""Anthropic Messages (type 14) and Claude-compatible upstreams (type 52).

https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

from ...snapshot import ChannelEntry
from ..base import Adaptor

API_VERSION = "2023-06-01"  # https://docs.anthropic.com/en/api/versioning


class AnthropicAdaptor(Adaptor):
    default_format = "messages"

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
