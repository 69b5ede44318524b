"""OpenAI and every OpenAI-compatible channel type (DeepSeek, Groq, xAI, OpenRouter, ...).

https://platform.openai.com/docs/api-reference/chat/create
https://platform.openai.com/docs/api-reference/responses/create
"""

from __future__ import annotations

import re
from typing import Any

from ... import ir
from ...snapshot import ChannelEntry
from ..base import Adaptor
from .quirks import channel_quirks

PATHS = {"chat": "/chat/completions", "responses": "/responses", "embeddings": "/embeddings", "completions": "/completions"}

# Base URLs that already end in an API version (".../v1", "/v1beta/openai", "/v3/openai") get
# the path appended directly; bare hosts ("https://api.openai.com", "https://api.groq.com/openai")
# get "/v1" first, as the original does.
_VERSIONED = re.compile(r"/v\d+[a-z0-9]*(/openai)?$")

# Channel types whose upstream has the Responses API as well as Chat Completions.
RESPONSES_TYPES = {1, 45}  # OpenAI, xAI


class OpenAIAdaptor(Adaptor):
    default_format = "chat"

    def native_formats(self, channel: ChannelEntry, *, model: str | None = None) -> frozenset[str]:
        # config.api_format "response" (the fork's name) marks an upstream that only has the
        # Responses API; official OpenAI and xAI have both.
        if channel.config.get("api_format") == "response":
            return frozenset({"responses"})
        if channel.type in RESPONSES_TYPES:
            return frozenset({"chat", "responses"})
        return frozenset({"chat"})

    def upstream_format(self, channel: ChannelEntry, caller_format: str, *, model: str | None = None) -> str:
        native = self.native_formats(channel, model=model)
        if caller_format in native:
            return caller_format
        return "chat" if "chat" in native else "responses"

    def adapt_passthrough(self, payload: dict[str, Any], *, wire: str, channel: ChannelEntry) -> dict[str, Any] | None:
        return channel_quirks(payload, channel=channel, wire=wire)

    def encode_request(
        self, request: ir.Request, *, model: str, wire: str, channel: ChannelEntry | None = None
    ) -> dict[str, Any]:
        payload = super().encode_request(request, model=model, wire=wire, channel=channel)
        if channel is None:
            return payload
        return channel_quirks(payload, channel=channel, wire=wire) or payload

    def build_url(self, channel: ChannelEntry, endpoint: str, *, model: str, stream: bool, wire: str) -> str:
        base = channel.base_url
        prefix = base if _VERSIONED.search(base) else base + "/v1"
        return prefix + PATHS[wire if endpoint == "chat" else endpoint]

    def build_headers(self, channel: ChannelEntry, *, wire: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {channel.key}", "Content-Type": "application/json"}
        organization = channel.config.get("organization")
        if isinstance(organization, str) and organization:
            headers["OpenAI-Organization"] = organization
        return headers
