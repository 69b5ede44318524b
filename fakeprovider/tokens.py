"""The fake provider's tokenizer.

This is deliberately *not* a real BPE tokenizer: it is a tiny, fully
specified rule set, so that the gateway's tests can compute the exact bill
the fake upstream will report (``usage``) without shipping tiktoken.  Keep
it exactly as documented -- gateway tests import these functions to compute
expected token counts.

Rules:

* ``count_tokens(text)`` = number of matches of ``\\w+|[^\\w\\s]``.
* chat prompt = for every message, the tokens of every text in ``content``
  (a string, or the ``text`` of parts whose type is ``text``) + 85 per
  ``image_url`` part + 3; plus, for every tool definition,
  ``count_tokens(json.dumps(tool["function"], separators=(",", ":")))``.
* embeddings = sum of ``count_tokens`` per input string; a token-id list
  counts its length.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "IMAGE_TOKENS",
    "PER_MESSAGE_TOKENS",
    "count_chat_prompt_tokens",
    "count_embedding_tokens",
    "count_message_tokens",
    "count_tokens",
    "count_tool_tokens",
]

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")

#: Flat cost of one ``image_url`` content part.
IMAGE_TOKENS = 85
#: Per-message overhead (role, separators), in the spirit of OpenAI's cookbook.
PER_MESSAGE_TOKENS = 3


def count_tokens(text: str) -> int:
    """Number of matches of ``\\w+|[^\\w\\s]`` in *text*."""
    if not text:
        return 0
    return len(_TOKEN_RE.findall(text))


def count_message_tokens(message: Any) -> int:
    """Tokens of one chat message, including the per-message overhead.

    Tolerant of odd input (non-dict messages, ``content: null`` on assistant
    tool-call messages): anything that is not text or an image costs nothing.
    """
    total = PER_MESSAGE_TOKENS
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        total += count_tokens(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                total += count_tokens(part["text"])
            elif kind == "image_url":
                total += IMAGE_TOKENS
    return total


def count_tool_tokens(tools: Any) -> int:
    """Tokens of the ``tools`` definitions of a chat request.

    Uses the stdlib ``json.dumps`` (ASCII-escaped, key order preserved) with
    compact separators, so a Python test can reproduce it byte for byte.
    """
    if not isinstance(tools, list):
        return 0
    total = 0
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            total += count_tokens(json.dumps(tool["function"], separators=(",", ":")))
    return total


def count_chat_prompt_tokens(messages: Any, tools: Any = None) -> int:
    """Prompt tokens of a chat completion request (``messages`` + ``tools``)."""
    total = 0
    if isinstance(messages, list):
        total = sum(count_message_tokens(m) for m in messages)
    return total + count_tool_tokens(tools)


def count_embedding_tokens(inputs: Any) -> int:
    """Prompt tokens of an embeddings ``input`` (any of the four accepted shapes)."""
    if isinstance(inputs, str):
        return count_tokens(inputs)
    if not isinstance(inputs, list):
        return 0
    if inputs and all(isinstance(x, int) for x in inputs):
        return len(inputs)  # a single pre-tokenized input
    total = 0
    for item in inputs:
        if isinstance(item, str):
            total += count_tokens(item)
        elif isinstance(item, list):
            total += len(item)
    return total
