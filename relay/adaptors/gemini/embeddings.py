"""OpenAI /v1/embeddings <-> Gemini `batchEmbedContents`.

https://ai.google.dev/api/embeddings#method:-models.batchembedcontents
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from ... import ir
from ...tokens import count_text

__all__ = ["embeddings_from_gemini", "embeddings_to_gemini", "model_path"]


def model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def _embedding_inputs(payload: dict[str, Any]) -> list[str]:
    value = payload.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ir.ConversionError("Gemini embeddings take a string or an array of strings as input", "input")


def embeddings_to_gemini(payload: dict[str, Any], *, model: str) -> dict[str, Any]:
    """OpenAI /v1/embeddings body -> BatchEmbedContentsRequest."""
    name = model_path(model)
    dims = payload.get("dimensions")
    requests = []
    for text in _embedding_inputs(payload):
        item: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if isinstance(dims, int) and not isinstance(dims, bool) and dims > 0:
            item["outputDimensionality"] = dims
        requests.append(item)
    return {"requests": requests}


def embeddings_from_gemini(body: Any, *, model: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """BatchEmbedContentsResponse -> OpenAI's embeddings list. batchEmbedContents reports no
    usage, so prompt tokens are estimated from the inputs of `payload` (the caller's request),
    which also says whether the caller wants base64 (little-endian float32, as OpenAI sends)."""
    if not isinstance(body, dict) or not isinstance(body.get("embeddings"), list):
        raise ir.ConversionError("the Gemini embeddings response has no embeddings list")
    as_base64 = isinstance(payload, dict) and payload.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(body["embeddings"]):
        values = item.get("values") if isinstance(item, dict) else None
        floats = [float(v) for v in values] if isinstance(values, list) else []
        vector: Any = floats
        if as_base64:
            vector = base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = 0
    if isinstance(payload, dict):
        try:
            tokens = sum(count_text(text) for text in _embedding_inputs(payload))
        except ir.ConversionError:
            tokens = 0
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

