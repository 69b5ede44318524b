"""Deterministic content generation: reply text, JSON from JSON Schema,
tool-call arguments and embeddings.

Everything here is a pure function of the request so that tests can predict
the output exactly and benchmarks see stable response sizes.
Format references: https://platform.openai.com/docs/api-reference/chat
and https://platform.openai.com/docs/api-reference/embeddings/create
"""

from __future__ import annotations

import hashlib
import math
import sys
from array import array
from functools import lru_cache
from itertools import accumulate, cycle, islice
from typing import Any

import orjson

from .tokens import count_tokens

__all__ = [
    "DEFAULT_REPLY_WORDS",
    "count_images",
    "embedding_bytes",
    "embedding_floats",
    "json_from_schema",
    "last_user_text",
    "message_text",
    "reply_words",
    "tool_arguments",
    "truncate_words",
]

#: Without ``words=N`` the reply echoes at most this many user words.
DEFAULT_REPLY_WORDS = 12
_PREFIX = ("Fake", "reply", "to:")
_MAX_SCHEMA_DEPTH = 24  # guards recursive $ref schemas


# --------------------------------------------------------------------------
# Reply text
# --------------------------------------------------------------------------
def message_text(content: Any) -> str:
    """Text of a message ``content``: the string, or text parts joined by a space."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def count_images(messages: list[Any]) -> int:
    """Number of ``image_url`` parts anywhere in the conversation."""
    n = 0
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            n += sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
    return n


def last_user_text(messages: list[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return message_text(m.get("content"))
    return ""


def reply_words(messages: list[Any], words: int | None = None) -> list[str]:
    """Words of the deterministic reply (join with a single space).

    ``"Fake reply to: " + first 12 user words``; with images,
    ``"(saw K image(s))"`` follows ``"Fake reply to:"``.  With ``words=N`` the
    same word sequence (with *all* user words) is cycled to exactly N words,
    so benchmarks can ask for arbitrarily long replies.
    """
    head = list(_PREFIX)
    images = count_images(messages)
    if images:
        head += ["(saw", str(images), "image(s))"]
    user = last_user_text(messages).split()
    if words is None:
        return head + user[:DEFAULT_REPLY_WORDS]
    return list(islice(cycle(head + user), words))


def truncate_words(words: list[str], max_tokens: int | None) -> tuple[list[str], bool]:
    """Cut *words* at a word boundary so the text fits in *max_tokens*.

    Tokens never span whitespace, so the token count of the joined text is
    the sum of the per-word counts.  Returns ``(words, truncated)``.
    """
    if max_tokens is None:
        return words, False
    for i, total in enumerate(accumulate(count_tokens(w) for w in words)):
        if total > max_tokens:
            return words[:i], True
    return words, False


# --------------------------------------------------------------------------
# JSON from JSON Schema
# --------------------------------------------------------------------------
def _resolve_ref(ref: str, root: dict[str, Any]) -> Any:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            section = root.get(prefix[2:-1])
            if isinstance(section, dict):
                return section.get(ref[len(prefix):])
    if ref == "#":
        return root
    return None


def json_from_schema(schema: Any, root: Any = None, _depth: int = 0) -> Any:
    """A deterministic instance of *schema* (best effort, never raises).

    object -> every property; string -> "example" (or first enum);
    number -> 0.5; integer -> 1; boolean -> true; array -> one item;
    anyOf/oneOf -> first option; null/unknown -> null.
    """
    if root is None:
        root = schema if isinstance(schema, dict) else {}
    if not isinstance(schema, dict) or _depth > _MAX_SCHEMA_DEPTH:
        return None
    if "$ref" in schema:
        return json_from_schema(_resolve_ref(str(schema["$ref"]), root), root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return json_from_schema(options[0], root, _depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):  # e.g. ["string", "null"]: prefer the non-null type
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and isinstance(schema.get("properties"), dict):
        kind = "object"
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {k: json_from_schema(v, root, _depth + 1) for k, v in props.items()}
    if kind == "string":
        return "example"
    if kind == "number":
        return 0.5
    if kind == "integer":
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return [json_from_schema(schema.get("items"), root, _depth + 1)]
    return None


def tool_arguments(function: dict[str, Any]) -> str:
    """Compact JSON arguments for a function tool, generated from its ``parameters``."""
    params = function.get("parameters")
    value = json_from_schema(params) if isinstance(params, dict) else {}
    if value is None:
        value = {}
    return orjson.dumps(value).decode()


# --------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------
def _input_digest(item: str | list[int]) -> bytes:
    if isinstance(item, str):
        return hashlib.sha256(item.encode("utf-8")).digest()
    return hashlib.sha256(b"tokens:" + ",".join(map(str, item)).encode()).digest()


@lru_cache(maxsize=4096)
def _vector(digest: bytes, dims: int) -> array:
    """Unit-length float32 vector, a pure function of (digest, dims).

    SHAKE-256 stretches the seed to any length cheaply; cached because
    benchmarks embed the same few inputs over and over.
    """
    raw = array("i")
    raw.frombytes(hashlib.shake_256(digest).digest(4 * dims))
    if sys.byteorder != "little":  # same vector on every platform
        raw.byteswap()
    norm = math.sqrt(math.fsum(float(x) * x for x in raw)) or 1.0
    return array("f", (x / norm for x in raw))


def embedding_floats(item: str | list[int], dims: int) -> list[float]:
    """The embedding as a list of (float32-exact) floats, for ``encoding_format=float``."""
    return _vector(_input_digest(item), dims).tolist()


def embedding_bytes(item: str | list[int], dims: int) -> bytes:
    """The embedding as little-endian float32 bytes, for ``encoding_format=base64``."""
    vec = _vector(_input_digest(item), dims)
    if sys.byteorder == "little":
        return vec.tobytes()
    swapped = array("f", vec)
    swapped.byteswap()
    return swapped.tobytes()
