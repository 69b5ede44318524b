"""The 20 regression-matrix variants and the exact request each one sends.

{chat, response, claude} x {plain, tools, structured} x {no stream, stream}, plus Response vision
x {no stream, stream}. Payloads follow the original's `cmd/test`: "Say hello in one sentence.",
a forced `get_weather(location, unit)` tool call for San Francisco, the `topic_classification`
JSON schema (a forced `topic_classifier` tool for Claude), and a small embedded JPEG for vision.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANTHROPIC_VERSION",
    "JPEG_DATA_URL",
    "STRUCTURED_SCHEMA",
    "VARIANTS",
    "Variant",
    "select_variants",
    "solid_jpeg",
]

ANTHROPIC_VERSION = "2023-06-01"
PLAIN_PROMPT = "Say hello in one sentence."
TOOLS_PROMPT = "What is the weather in San Francisco, CA right now? Use the get_weather tool."
STRUCTURED_PROMPT = (
    "Classify the topic of this text and give your confidence between 0 and 1: "
    "'The new GPU doubles training throughput for large language models.'"
)
VISION_PROMPT = "What is in this image?"
MAX_TOKENS = 1024
STRUCTURED_MAX_TOKENS = 512
TEMPERATURE = 0.7

WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
    },
    "required": ["location", "unit"],
}
WEATHER_DESCRIPTION = "Get the current weather for a location."
STRUCTURED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["topic", "confidence"],
    "additionalProperties": False,
}

APIS = ("chat", "response", "claude")
KINDS = ("plain", "tools", "structured")
PATHS = {"chat": "/v1/chat/completions", "response": "/v1/responses", "claude": "/v1/messages"}


# ----------------------------------------------------------------------------------- the image
class _Bits:
    """MSB-first bit writer with JPEG byte stuffing (0xFF -> 0xFF 0x00) and 1-bit padding."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = self.n = 0

    def flush(self) -> bytes:
        while self.n:
            self.put(1, 1)
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _category(value: int) -> int:
    return abs(value).bit_length()


def solid_jpeg(width: int = 32, height: int = 32, rgb: tuple[int, int, int] = (220, 30, 30)) -> bytes:
    """A valid baseline JFIF of one solid colour (3 components, 4:4:4).

    Every 8x8 block has only a DC coefficient, so the scan is DC category codes and EOBs. The
    Huffman tables are minimal: DC symbol i gets a code of length i+1 (never all ones), AC has
    the single symbol EOB coded "0".
    """
    r, g, b = rgb
    ycc = (
        0.299 * r + 0.587 * g + 0.114 * b,
        128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    )
    # DC coefficient of a flat block = 8 * (sample - 128); quantised by 8 it is the level shift.
    dcs = [max(-127, min(127, round(c) - 128)) for c in ycc]
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    diffs = [dcs] + [[0, 0, 0]] * (blocks - 1)  # DC is coded as the difference to the last block
    symbols = sorted({_category(d) for row in diffs for d in row})
    dc_codes: dict[int, tuple[int, int]] = {}
    code = 0
    for length, sym in enumerate(symbols, start=1):
        dc_codes[sym] = (code, length)
        code = (code + 1) << 1
    bits = _Bits()
    for row in diffs:
        for diff in row:
            cat = _category(diff)
            bits.put(*dc_codes[cat])
            if cat:
                bits.put(diff if diff > 0 else diff - 1 + (1 << cat), cat)
            bits.put(0, 1)  # EOB
    counts = [0] * 16
    for length in range(1, len(symbols) + 1):
        counts[length - 1] = 1
    return b"".join([
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xDB, b"\x00" + bytes([8] * 64)),
        _segment(0xC0, bytes([8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03\x01\x11\x00\x02\x11\x00\x03\x11\x00"),
        _segment(0xC4, b"\x00" + bytes(counts) + bytes(symbols)),
        _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"),
        _segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"),
        bits.flush(),
        b"\xff\xd9",
    ])


JPEG_DATA_URL = "data:image/jpeg;base64," + base64.b64encode(solid_jpeg()).decode()


# ------------------------------------------------------------------------------------ variants
@dataclass(frozen=True, slots=True)
class Variant:
    api: str  # chat | response | claude
    kind: str  # plain | tools | structured | vision
    stream: bool

    @property
    def name(self) -> str:
        return f"{self.api}-{self.kind}" + ("-stream" if self.stream else "")

    @property
    def path(self) -> str:
        return PATHS[self.api]

    def headers(self, key: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.stream:
            headers["Accept"] = "text/event-stream"
        if self.api == "claude":
            headers.update({"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION})
        else:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def payload(self, model: str) -> dict[str, Any]:
        build = {"chat": _chat, "response": _response, "claude": _claude}[self.api]
        body: dict[str, Any] = {"model": model, **build(self.kind), "temperature": TEMPERATURE, "stream": self.stream}
        if self.stream and self.api == "chat":
            body["stream_options"] = {"include_usage": True}
        return body


def _max_tokens(kind: str) -> int:
    return STRUCTURED_MAX_TOKENS if kind == "structured" else MAX_TOKENS


def _chat(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {"max_tokens": _max_tokens(kind)}
    if kind == "tools":
        body["messages"] = [{"role": "user", "content": TOOLS_PROMPT}]
        body["tools"] = [{
            "type": "function",
            "function": {"name": "get_weather", "description": WEATHER_DESCRIPTION, "parameters": WEATHER_PARAMETERS},
        }]
        body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    elif kind == "structured":
        body["messages"] = [{"role": "user", "content": STRUCTURED_PROMPT}]
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "topic_classification", "strict": True, "schema": STRUCTURED_SCHEMA},
        }
    else:
        body["messages"] = [{"role": "user", "content": PLAIN_PROMPT}]
    return body


def _response(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {"max_output_tokens": _max_tokens(kind)}
    if kind == "tools":
        body["input"] = TOOLS_PROMPT
        body["tools"] = [{
            "type": "function", "name": "get_weather", "description": WEATHER_DESCRIPTION, "parameters": WEATHER_PARAMETERS,
        }]
        body["tool_choice"] = {"type": "function", "name": "get_weather"}
    elif kind == "structured":
        body["input"] = STRUCTURED_PROMPT
        body["text"] = {
            "format": {"type": "json_schema", "name": "topic_classification", "strict": True, "schema": STRUCTURED_SCHEMA},
        }
    elif kind == "vision":
        body["input"] = [{
            "role": "user",
            "content": [
                {"type": "input_text", "text": VISION_PROMPT},
                {"type": "input_image", "image_url": JPEG_DATA_URL, "detail": "low"},
            ],
        }]
    else:
        body["input"] = PLAIN_PROMPT
    return body


def _claude(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {"max_tokens": _max_tokens(kind)}
    if kind == "tools":
        body["messages"] = [{"role": "user", "content": TOOLS_PROMPT}]
        body["tools"] = [{"name": "get_weather", "description": WEATHER_DESCRIPTION, "input_schema": WEATHER_PARAMETERS}]
        body["tool_choice"] = {"type": "tool", "name": "get_weather"}
    elif kind == "structured":
        body["messages"] = [{"role": "user", "content": STRUCTURED_PROMPT}]
        body["tools"] = [{
            "name": "topic_classifier",
            "description": "Record the topic classification of the text.",
            "input_schema": STRUCTURED_SCHEMA,
        }]
        body["tool_choice"] = {"type": "tool", "name": "topic_classifier"}
    else:
        body["messages"] = [{"role": "user", "content": PLAIN_PROMPT}]
    return body


VARIANTS: tuple[Variant, ...] = tuple(
    Variant(api, kind, stream) for api in APIS for kind in KINDS for stream in (False, True)
) + (Variant("response", "vision", False), Variant("response", "vision", True))


def select_variants(prefixes: str | Iterable[str] | None) -> list[Variant]:
    """The variants whose name starts with one of the comma-separated prefixes (all when empty).

    Raises ValueError for a prefix that matches nothing, so a typo never runs an empty matrix.
    """
    if prefixes is None:
        return list(VARIANTS)
    items = [p.strip() for p in (prefixes.split(",") if isinstance(prefixes, str) else prefixes)]
    items = [p for p in items if p]
    if not items:
        return list(VARIANTS)
    unknown = [p for p in items if not any(v.name.startswith(p) for v in VARIANTS)]
    if unknown:
        raise ValueError(f"no variant matches {', '.join(unknown)}; known: {', '.join(v.name for v in VARIANTS)}")
    return [v for v in VARIANTS if any(v.name.startswith(p) for p in items)]
