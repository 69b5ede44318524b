"""Provider adaptors, one package each, registered here by dotted path (imported lazily).

Adding a provider = one package under relay/adaptors/ plus one line in ADAPTORS; channel
types name their protocol in channels_app/types.py.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from .base import Adaptor

ADAPTORS: dict[str, str] = {
    "openai": "relay.adaptors.openai.adaptor.OpenAIAdaptor",
    "anthropic": "relay.adaptors.anthropic.adaptor.AnthropicAdaptor",
    "gemini": "relay.adaptors.gemini.adaptor.GeminiAdaptor",
    "azure": "relay.adaptors.azure.adaptor.AzureAdaptor",
    "vertex": "relay.adaptors.vertex.adaptor.VertexAdaptor",
    "bedrock": "relay.adaptors.bedrock.adaptor.BedrockAdaptor",
}


@cache
def get_adaptor(protocol: str) -> Adaptor:
    module_name, _, class_name = ADAPTORS[protocol].rpartition(".")
    return getattr(import_module(module_name), class_name)()
