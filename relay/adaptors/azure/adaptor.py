"""Azure OpenAI (channel type 3), and Claude deployments of an Azure AI Foundry resource.

The channel's base URL is the resource endpoint (`https://<name>.openai.azure.com` or
`https://<name>.cognitiveservices.azure.com`); the key goes in the `api-key` header, not in
`Authorization` (https://learn.microsoft.com/azure/ai-foundry/openai/reference#authentication).

- Chat Completions and embeddings go to a deployment, with a dated API version:
  `{base}/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21`
  (https://learn.microsoft.com/azure/ai-foundry/openai/reference#chat-completions). The
  deployment is the mapped model name as it is: deployments named after models keep the dots
  Azure model names have ("gpt-4.1"). The original one-api stripped every "." ("gpt-3.5-turbo"
  -> "gpt-35-turbo"); channels imported from it can ask for that with config `strip_dots`, or
  name deployments one by one with config `deployment_map` {model: deployment}.
- config `api_version: "v1"` uses the v1 API instead (GA since August 2025): `{base}/openai/v1/...`
  with the deployment name as `model` in the body and no api-version
  (https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle).
- Responses exists only on the v1 surface: `{base}/openai/v1/responses`
  (https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses); config
  `responses_api_version` selects the older dated `{base}/openai/responses?api-version=...`
  (or `"preview"`: the v1 preview, `/openai/v1/responses?api-version=preview`).
- Claude models (a deployment whose name starts with "claude") speak Anthropic Messages at
  `{base}/anthropic/v1/messages` with `x-api-key` and `anthropic-version`
  (https://platform.claude.com/docs/en/build-with-claude/claude-in-microsoft-foundry); the
  deployment name is the body's `model`, so a Messages caller passes through unchanged.

On the v1 surface (Responses, `api_version: "v1"`, Claude) the deployment travels as the body's
`model`, which a pass-through request carries as the caller sent it (model_mapping applied):
name deployments there through the channel's model_mapping, not `deployment_map`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ...snapshot import ChannelEntry
from ..anthropic.adaptor import API_VERSION as ANTHROPIC_VERSION
from ..base import Adaptor

__all__ = ["DEFAULT_API_VERSION", "REASONING_API_VERSION", "AzureAdaptor", "api_version_for", "deployment_for", "is_claude"]

# The latest dated GA version of the data-plane inference API
# (https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle).
DEFAULT_API_VERSION = "2024-10-21"
# Reasoning models are refused under older versions: o1 and o3-mini need 2024-12-01-preview or
# later, o3, o4-mini and the GPT-5 series list 2025-04-01-preview, which serves them all
# (https://learn.microsoft.com/azure/ai-foundry/openai/how-to/reasoning, "API & feature support").
REASONING_API_VERSION = "2025-04-01-preview"
_REASONING = re.compile(r"^(o1|o3|o4|gpt-5|codex-mini)", re.IGNORECASE)
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}")
# A base URL pasted with the API prefix ("https://x.openai.azure.com/openai/v1"): paths below
# are built from the resource endpoint itself.
_API_SUFFIX = re.compile(r"/openai(/v1)?/?$")

PATHS = {"chat": "chat/completions", "embeddings": "embeddings", "completions": "completions"}


def is_claude(model: str) -> bool:
    return model.lower().startswith("claude")


def resource_base(channel: ChannelEntry) -> str:
    return _API_SUFFIX.sub("", channel.base_url.rstrip("/"))


def deployment_for(channel: ChannelEntry, model: str) -> str:
    """The deployment serving `model`: config `deployment_map` first, then the name as it is
    (without its dots under config `strip_dots`, the original one-api's behaviour)."""
    mapping = channel.config.get("deployment_map")
    if isinstance(mapping, dict):
        named = mapping.get(model)
        if isinstance(named, str) and named:
            return named
    if channel.config.get("strip_dots") is True:
        return model.replace(".", "")
    return model


def api_version_for(channel: ChannelEntry, model: str) -> str:
    configured = channel.config.get("api_version")
    version = configured.strip() if isinstance(configured, str) and configured.strip() else DEFAULT_API_VERSION
    # Dated versions compare as strings; "-preview" sorts after the GA version of the same day.
    if _REASONING.match(model) and _DATED.match(version) and version < REASONING_API_VERSION:
        return REASONING_API_VERSION
    return version


class AzureAdaptor(Adaptor):
    default_format = "chat"

    def native_formats(self, channel: ChannelEntry, *, model: str | None = None) -> frozenset[str]:
        # `model` lets Claude deployments take Messages: the relay must pass the mapped model
        # for that (without it every model is taken for an OpenAI one).
        if model is not None and is_claude(model):
            return frozenset({"messages"})
        return frozenset({"chat", "responses"})

    def upstream_format(self, channel: ChannelEntry, caller_format: str, *, model: str | None = None) -> str:
        if model is not None and is_claude(model):
            return "messages"
        if caller_format in ("chat", "responses"):
            return caller_format
        # config api_format "response" (the fork's name) prefers Responses for other callers.
        return "responses" if channel.config.get("api_format") == "response" else "chat"

    def build_url(self, channel: ChannelEntry, endpoint: str, *, model: str, stream: bool, wire: str) -> str:
        base = resource_base(channel)
        if wire == "messages":
            if endpoint != "chat":
                raise ValueError(f"Claude deployments on Azure have no {endpoint} endpoint")
            return base + "/anthropic/v1/messages"
        if endpoint == "chat" and wire == "responses":
            return base + self._responses_path(channel)
        path = PATHS.get(endpoint)
        if path is None:
            raise ValueError(f"Azure OpenAI has no {endpoint} endpoint here")
        version = api_version_for(channel, model)
        if version == "v1":
            return f"{base}/openai/v1/{path}"
        deployment = quote(deployment_for(channel, model), safe="")
        return f"{base}/openai/deployments/{deployment}/{path}?api-version={quote(version, safe='')}"

    @staticmethod
    def _responses_path(channel: ChannelEntry) -> str:
        version = channel.config.get("responses_api_version")
        if not isinstance(version, str) or not version.strip() or version.strip() == "v1":
            return "/openai/v1/responses"
        version = version.strip()
        if version == "preview":
            return "/openai/v1/responses?api-version=preview"
        return f"/openai/responses?api-version={quote(version, safe='')}"

    def build_headers(self, channel: ChannelEntry, *, wire: str) -> dict[str, str]:
        if wire == "messages":
            headers = {"x-api-key": channel.key, "anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
            beta = channel.config.get("anthropic_beta")
            if isinstance(beta, str) and beta:
                headers["anthropic-beta"] = beta
            return headers
        return {"api-key": channel.key, "Content-Type": "application/json"}
