"""Optional adaptor capabilities, checked with isinstance() (runtime-checkable Protocols)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ConvertsEmbeddings(Protocol):
    """An upstream whose embeddings API is not OpenAI's (Gemini's batchEmbedContents)."""

    def encode_embeddings(self, payload: dict[str, Any], *, model: str) -> dict[str, Any]: ...

    def decode_embeddings(self, body: Any, *, model: str, payload: dict[str, Any] | None = None) -> dict[str, Any]: ...
