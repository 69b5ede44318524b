"""OpenAI and every OpenAI-compatible channel type (DeepSeek, Groq, xAI, OpenRouter, ...).

https://platform.openai.com/docs/api-reference/chat/create
"""

from __future__ import annotations

import re

from ...snapshot import ChannelEntry
from ..base import Adaptor

PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings", "completions": "/completions"}

# Base URLs that already end in an API version (".../v1", "/v1beta/openai", "/v3/openai") get
# the path appended directly; bare hosts ("https://api.openai.com", "https://api.groq.com/openai")
# get "/v1" first, as the original does.
_VERSIONED = re.compile(r"/v\d+[a-z0-9]*(/openai)?$")


class OpenAIAdaptor(Adaptor):
    native_protocol = "openai_chat"

    def build_url(self, channel: ChannelEntry, endpoint: str) -> str:
        base = channel.base_url
        prefix = base if _VERSIONED.search(base) else base + "/v1"
        return prefix + PATHS[endpoint]

    def build_headers(self, channel: ChannelEntry) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {channel.key}", "Content-Type": "application/json"}
        organization = channel.config.get("organization")
        if isinstance(organization, str) and organization:
            headers["OpenAI-Organization"] = organization
        return headers
