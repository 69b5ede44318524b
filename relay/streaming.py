"""Relaying an OpenAI-format chat stream event by event, reading usage as it passes.

Events are forwarded byte for byte (no re-serialisation); each one is parsed once to read
usage and to count what was delivered, which bills a stream that ends without usage. Memory
stays bounded: only counters are kept, never the text.
https://platform.openai.com/docs/api-reference/chat/streaming
"""

from __future__ import annotations

from typing import Any

import orjson

from billing.pricing import Usage

from .protocols.sse import SSESplitter, event_data
from .tokens import count_text
from .usage import usage_from_openai

DONE = b"[DONE]"


class OpenAIChatStream:
    """Decodes an upstream chat stream into events to forward, each with its output tokens.

    The relay decides event by event whether to forward (so a quota check can stop the answer
    at an exact event); this class only reads usage and completion markers as they pass.
    """

    def __init__(self, *, forward_usage_chunk: bool) -> None:
        self._splitter = SSESplitter()
        self._forward_usage_chunk = forward_usage_chunk
        self.usage: Usage | None = None
        self.saw_done = False
        self.saw_finish = False

    def feed(self, data: bytes) -> list[tuple[bytes, int]]:
        """(bytes to send to the client, output tokens in them) for each event `data` completes."""
        out = []
        for event in self._splitter.feed(data):
            forwarded = self._event(event)
            if forwarded is not None:
                out.append(forwarded)
        return out

    def finish(self) -> list[tuple[bytes, int]]:
        rest = self._splitter.close()
        forwarded = self._event(rest) if rest else None
        return [forwarded] if forwarded is not None else []

    def _event(self, event: bytes) -> tuple[bytes, int] | None:
        data = event_data(event)
        if data is None:
            return None  # comments / keep-alives
        if data.strip() == DONE:
            self.saw_done = True
            return None  # sent by the relay once billing is settled
        try:
            chunk: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None  # a garbled event would break the client's parser: drop it
        if not isinstance(chunk, dict):
            return None
        usage = chunk.get("usage")
        choices = chunk.get("choices") or []
        if isinstance(usage, dict):
            self.usage = usage_from_openai(usage)
            if not choices and not self._forward_usage_chunk:
                return None
        tokens = 0
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                self.saw_finish = True
            delta = choice.get("delta")
            if isinstance(delta, dict):
                tokens += _delta_tokens(delta)
        return b"data: " + data + b"\n\n", tokens


def _delta_tokens(delta: dict[str, Any]) -> int:
    total = 0
    for field in ("content", "reasoning_content", "reasoning"):
        value = delta.get(field)
        if isinstance(value, str) and value:
            total += count_text(value)
    for call in delta.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for field in ("name", "arguments"):
                value = function.get(field)
                if isinstance(value, str) and value:
                    total += count_text(value)
    return total
