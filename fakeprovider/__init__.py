"""A protocol-faithful fake OpenAI-compatible upstream provider.

Runs as its own process (``python -m fakeprovider --port 0``) and is used by
the gateway's tests and benchmarks instead of mocking HTTP, so the real HTTP
client code paths (streaming, disconnects, retries) are exercised.

Behaviour is selected per request with a URL prefix, e.g.
``/s/429/v1/chat/completions`` or ``/s/words=200,slow=5/v1/chat/completions``;
see :mod:`fakeprovider.scenarios`.  No Django imports anywhere in here: the
provider must stay usable from a bare benchmark process.
"""

from __future__ import annotations

from .tokens import count_chat_prompt_tokens, count_embedding_tokens, count_tokens

__all__ = ["count_chat_prompt_tokens", "count_embedding_tokens", "count_tokens"]
