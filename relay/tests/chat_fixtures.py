"""Shared helpers of the Chat converter tests: recorded fixtures and SSE framing checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from relay.converters import chat

FIXTURES = Path(__file__).parent / "fixtures" / "chat"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def decode(data: bytes, step: int | None = None) -> list[Any]:
    decoder = chat.StreamDecoder()
    events: list[Any] = []
    if step is None:
        events += decoder.feed(data)
    else:
        for i in range(0, len(data), step):
            events += decoder.feed(data[i : i + step])
    return events + decoder.close()


def chunks_of(data: bytes) -> list[dict[str, Any]]:
    """The JSON objects of an SSE body, checking the framing; [DONE] must be last."""
    assert data.endswith(b"\n\n")
    frames = data[:-2].split(b"\n\n")
    assert frames[-1] == b"data: [DONE]"
    out = []
    for frame in frames[:-1]:
        assert frame.startswith(b"data: ")
        out.append(orjson.loads(frame[6:]))
    return out
