"""Token counting for when an upstream reports no usage (a stream cut short, a client gone).

No tokenizer data can be downloaded at run time here, so this is an estimate: one token per
word or punctuation mark (regex \\w+|[^\\w\\s]), which tracks BPE counts of English text
closely. It is never used when the upstream reports usage, which is the normal case.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")
IMAGE_TOKENS = 85
PER_MESSAGE_TOKENS = 3


def count_text(text: str) -> int:
    return len(_TOKEN.findall(text))


def count_content(content: Any) -> int:
    if isinstance(content, str):
        return count_text(content)
    total = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                total += count_text(part["text"])
            elif part.get("type") == "image_url":
                total += IMAGE_TOKENS
    return total


def count_chat_prompt(payload: dict[str, Any]) -> int:
    total = 0
    for message in payload.get("messages") or []:
        if isinstance(message, dict):
            total += count_content(message.get("content")) + PER_MESSAGE_TOKENS
    for tool in payload.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            total += count_text(json.dumps(tool["function"], separators=(",", ":")))
    return total


def count_ir_prompt(request: Any) -> int:
    """Prompt tokens of an IR request (relay.ir.Request), counted the same way."""
    from . import ir

    total = sum(count_text(part.text) for part in request.system)
    for message in request.messages:
        total += PER_MESSAGE_TOKENS
        for part in message.parts:
            if isinstance(part, ir.TextPart):
                total += count_text(part.text)
            elif isinstance(part, ir.ImagePart):
                total += IMAGE_TOKENS
            elif isinstance(part, ir.ToolCallPart):
                total += count_text(part.name) + count_text(part.arguments)
            elif isinstance(part, ir.ToolResultPart):
                total += sum(count_text(c.text) for c in part.content if isinstance(c, ir.TextPart))
            elif isinstance(part, ir.ReasoningPart):
                total += count_text(part.text)
    for tool in request.tools:
        total += count_text(tool.name) + count_text(tool.description or "") + count_text(json.dumps(tool.parameters or {}))
    return total


def count_ir_response(response: Any) -> int:
    from . import ir

    total = 0
    for part in response.parts:
        if isinstance(part, (ir.TextPart, ir.ReasoningPart)):
            total += count_text(part.text)
        elif isinstance(part, ir.ToolCallPart):
            total += count_text(part.name) + count_text(part.arguments)
    return total
