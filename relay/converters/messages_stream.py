"""Anthropic Messages streaming <-> IR stream events, and the wire helpers both halves share.

Event sequence (https://docs.anthropic.com/en/api/messages-streaming):
    message_start, then per content block content_block_start / content_block_delta* /
    content_block_stop, then message_delta (stop_reason, cumulative usage) and message_stop;
    `ping` may appear anywhere, `error` ends the stream in-band.
Each SSE event is `event: <type>\\ndata: <json>\\n\\n`; the JSON repeats the type in "type".

Usage convention: Anthropic's `input_tokens` EXCLUDES cache reads and cache writes, the IR's
`prompt_tokens` includes them (see relay/ir.py); `usage_to_ir` / `usage_wire` convert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from relay import ir
from relay.protocols.sse import SSESplitter, event_data

__all__ = [
    "STRUCTURED_TOOL_PREFIX",
    "StreamDecoder",
    "StreamEncoder",
    "error_type",
    "is_structured_tool",
    "stop_from_ir",
    "stop_to_ir",
    "usage_to_ir",
    "usage_wire",
]

#: Tools whose name starts with this emulate `response_format` on Anthropic (which has no
#: json_schema field on every model/provider): request_from_ir adds such a tool and forces it,
#: and the decoders turn its `input` back into the text of the answer. Anthropic tool names are
#: `^[a-zA-Z0-9_-]{1,128}$`; a double underscore prefix will not clash with real tools.
STRUCTURED_TOOL_PREFIX = "__json_"


def is_structured_tool(name: Any) -> bool:
    return isinstance(name, str) and name.startswith(STRUCTURED_TOOL_PREFIX)


# --------------------------------------------------------------------------------------- stop reasons
# https://docs.anthropic.com/en/api/messages#response-stop-reason
_STOP_TO_IR: dict[str, ir.StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
    "pause_turn": "pause",
}
_STOP_FROM_IR = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "refusal": "refusal",
    "pause": "pause_turn",
    "error": "end_turn",
}


def stop_to_ir(reason: Any) -> ir.StopReason:
    return _STOP_TO_IR.get(reason, "stop") if isinstance(reason, str) else "stop"


def stop_from_ir(reason: str, stop_sequence: str | None, has_tool_calls: bool) -> str:
    if reason == "stop" and stop_sequence:
        return "stop_sequence"
    if reason == "stop" and has_tool_calls:
        # Some Chat upstreams finish tool-call turns with "stop"; Anthropic clients (Claude Code)
        # run tools on stop_reason "tool_use".
        return "tool_use"
    return _STOP_FROM_IR.get(reason, "end_turn")


# --------------------------------------------------------------------------------------- usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_to_ir(usage: Any) -> ir.Usage:
    """Anthropic usage -> IR usage (prompt includes cache read and cache write tokens).

    https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance
    `cache_creation` splits the writes by TTL; without it every write counts as 5-minute.
    """
    if not isinstance(usage, dict):
        return ir.Usage()
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    split = usage.get("cache_creation")
    write_1h = min(_int(split.get("ephemeral_1h_input_tokens")), write) if isinstance(split, dict) else 0
    return ir.Usage(
        prompt_tokens=_int(usage.get("input_tokens")) + read + write,
        completion_tokens=_int(usage.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=write - write_1h,
        cache_write_1h_tokens=write_1h,
    )


def usage_wire(usage: ir.Usage | None, *, output: bool = True, reasoning_tokens: int = 0) -> dict[str, Any]:
    """IR usage -> Anthropic usage: `input_tokens` without the cache buckets."""
    usage = usage or ir.Usage()
    cached = max(usage.cached_tokens, 0)
    write_5m = max(usage.cache_write_tokens, 0)
    write_1h = max(usage.cache_write_1h_tokens, 0)
    out: dict[str, Any] = {
        "input_tokens": max(usage.prompt_tokens - cached - write_5m - write_1h, 0),
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_read_input_tokens": cached,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
    }
    if output:
        out["output_tokens"] = max(usage.completion_tokens, 0)
        if reasoning_tokens > 0:
            out["output_tokens_details"] = {"thinking_tokens": reasoning_tokens}
    return out


# Anthropic error types: https://docs.anthropic.com/en/api/errors#error-shapes
_ERROR_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "billing_error", "permission_error", "not_found_error",
    "request_too_large", "rate_limit_error", "api_error", "timeout_error", "overloaded_error",
})
_ERROR_ALIASES = {
    "server_error": "api_error",
    "upstream_error": "api_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "invalid_api_key": "authentication_error",
}


def error_type(type_: str | None) -> str:
    """An OpenAI-style or internal error type -> the closest Anthropic error type."""
    if type_ in _ERROR_TYPES:
        return type_  # type: ignore[return-value]
    return _ERROR_ALIASES.get(type_ or "", "api_error")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# --------------------------------------------------------------------------------------- decoder


@dataclass(slots=True)
class _InBlock:
    index: int  # IR part index
    kind: str  # "text" | "reasoning" | "tool_call" | "structured" (tool_use emulating response_format)
    has_args: bool = False


class StreamDecoder:
    """Anthropic SSE bytes (from an upstream) -> IR stream events.

    Memory is bounded by the SSE splitter's event limit plus a few fields per open block.
    Upstream block indexes are renumbered into contiguous IR part indexes because server-tool
    blocks (server_tool_use, web_search_tool_result, ...) have no IR stream event and are skipped.
    """

    def __init__(self) -> None:
        self._sse = SSESplitter()
        self.remember_parsed = False  # PassthroughStream reads each event's JSON off `parsed`, not parsing twice
        self.parsed: tuple[bytes, Any] | None = None
        self._blocks: dict[int, _InBlock | None] = {}  # upstream index -> block (None = skipped)
        self._next_index = 0
        self._usage: dict[str, Any] = {}  # cumulative Anthropic usage (message_start, then message_delta)
        self._stop_reason: Any = None
        self._stop_sequence: str | None = None
        self._tool_calls = 0
        self._structured = 0
        self._done = False

    def feed(self, data: bytes) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for raw in self._sse.feed(data):
            out.extend(self._event(raw))
        return out

    def feed_event(self, event: bytes) -> list[ir.StreamEvent]:
        """One SSE event already split off (the pass-through splits once for itself and us)."""
        return self._event(event)

    def close(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        rest = self._sse.close()
        if rest:
            out.extend(self._event(rest))
        if not self._done:
            self._done = True
            out.append(ir.StreamError("the upstream stream ended before message_stop", "api_error"))
        return out

    # -- one SSE event ----------------------------------------------------------------------
    def _event(self, raw: bytes) -> list[ir.StreamEvent]:
        if self._done:
            return []
        data = event_data(raw)
        if data is None:
            return []
        name = None
        for line in raw.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._done = True
            return [ir.StreamError("the upstream sent an invalid stream event", "api_error")]
        if self.remember_parsed:
            self.parsed = (raw, obj)
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type") if isinstance(obj.get("type"), str) else name
        handler = getattr(self, f"_on_{kind}", None) if kind in _HANDLED else None
        return handler(obj) if handler is not None else []

    def _on_error(self, obj: dict[str, Any]) -> list[ir.StreamEvent]:
        self._done = True
        err = obj.get("error") if isinstance(obj.get("error"), dict) else {}
        message = err.get("message") if isinstance(err.get("message"), str) else "upstream error"
        return [ir.StreamError(message, err.get("type") if isinstance(err.get("type"), str) else "api_error")]

    def _on_message_start(self, obj: dict[str, Any]) -> list[ir.StreamEvent]:
        msg = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        if isinstance(msg.get("usage"), dict):
            self._usage = dict(msg["usage"])
        return [ir.StreamStart(
            id=str(msg.get("id") or ""), model=str(msg.get("model") or ""),
            usage=usage_to_ir(self._usage) if self._usage else None,
        )]

    def _on_content_block_start(self, obj: dict[str, Any]) -> list[ir.StreamEvent]:
        up = obj.get("index")
        block = obj.get("content_block")
        if not isinstance(up, int) or not isinstance(block, dict):
            return []
        btype = block.get("type")
        if btype == "text":
            b = self._open(up, "text")
            out: list[ir.StreamEvent] = [ir.PartStart(b.index, "text")]
            if isinstance(block.get("text"), str) and block["text"]:
                out.append(ir.TextDelta(b.index, block["text"]))
            return out
        if btype == "thinking":
            b = self._open(up, "reasoning")
            out = [ir.PartStart(b.index, "reasoning")]
            if isinstance(block.get("thinking"), str) and block["thinking"]:
                out.append(ir.ReasoningDelta(b.index, text=block["thinking"]))
            if isinstance(block.get("signature"), str) and block["signature"]:
                out.append(ir.ReasoningDelta(b.index, signature=block["signature"]))
            return out
        if btype == "redacted_thinking":
            b = self._open(up, "reasoning")
            data = block.get("data") if isinstance(block.get("data"), str) else ""
            return [ir.PartStart(b.index, "reasoning"), ir.ReasoningDelta(b.index, encrypted=data)]
        if btype == "tool_use":
            name = block.get("name")
            if is_structured_tool(name):
                self._structured += 1
                b = self._open(up, "structured")
                out = [ir.PartStart(b.index, "text")]
            else:
                self._tool_calls += 1
                b = self._open(up, "tool_call")
                out = [ir.PartStart(b.index, "tool_call", tool_call_id=str(block.get("id") or ""),
                                    tool_name=str(name or ""))]
            # Anthropic sends `input: {}` and streams the JSON; some compatible providers send
            # the whole input here instead.
            if isinstance(block.get("input"), dict) and block["input"]:
                b.has_args = True
                text = _dumps(block["input"])
                out.append(ir.TextDelta(b.index, text) if b.kind == "structured" else ir.ToolArgsDelta(b.index, text))
            return out
        self._blocks[up] = None  # server tool blocks: no IR stream event carries them
        return []

    def _open(self, up: int, kind: str) -> _InBlock:
        block = _InBlock(self._next_index, kind)
        self._next_index += 1
        self._blocks[up] = block
        return block

    def _on_content_block_delta(self, obj: dict[str, Any]) -> list[ir.StreamEvent]:
        b = self._blocks.get(obj.get("index"))  # type: ignore[arg-type]
        delta = obj.get("delta")
        if b is None or not isinstance(delta, dict):
            return []
        dtype = delta.get("type")
        if dtype == "text_delta" and isinstance(delta.get("text"), str) and delta["text"]:
            return [ir.TextDelta(b.index, delta["text"])]
        if dtype == "thinking_delta" and isinstance(delta.get("thinking"), str) and delta["thinking"]:
            return [ir.ReasoningDelta(b.index, text=delta["thinking"])]
        if dtype == "signature_delta" and isinstance(delta.get("signature"), str):
            return [ir.ReasoningDelta(b.index, signature=delta["signature"])]
        if dtype == "input_json_delta" and isinstance(delta.get("partial_json"), str) and delta["partial_json"]:
            b.has_args = True
            if b.kind == "structured":
                return [ir.TextDelta(b.index, delta["partial_json"])]
            return [ir.ToolArgsDelta(b.index, delta["partial_json"])]
        return []  # citations_delta and future delta types: nothing in the IR stream

    def _on_content_block_stop(self, obj: dict[str, Any]) -> list[ir.StreamEvent]:
        up = obj.get("index")
        b = self._blocks.pop(up, None) if isinstance(up, int) else None
        return self._stop_block(b) if b is not None else []

    @staticmethod
    def _stop_block(b: _InBlock) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        if not b.has_args and b.kind in ("tool_call", "structured"):
            # A tool without parameters streams no JSON at all; callers expect "{}".
            out.append(ir.ToolArgsDelta(b.index, "{}") if b.kind == "tool_call" else ir.TextDelta(b.index, "{}"))
        out.append(ir.PartStop(b.index))
        return out

    def _on_message_delta(self, obj: dict[str, Any]) -> list[ir.StreamEvent]:
        delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
        if delta.get("stop_reason") is not None:
            self._stop_reason = delta["stop_reason"]
        if isinstance(delta.get("stop_sequence"), str):
            self._stop_sequence = delta["stop_sequence"]
        usage = obj.get("usage")
        if isinstance(usage, dict):
            # message_delta usage values are cumulative totals: overwrite, keep what is absent.
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        return []

    def _on_message_stop(self, obj: dict[str, Any]) -> list[ir.StreamEvent]:
        self._done = True
        out: list[ir.StreamEvent] = []
        for b in [b for b in self._blocks.values() if b is not None]:
            out.extend(self._stop_block(b))  # blocks the upstream never stopped
        self._blocks.clear()
        reason = stop_to_ir(self._stop_reason)
        if reason == "tool_calls" and self._structured and not self._tool_calls:
            reason = "stop"  # the forced response_format tool is the answer, not a tool call
        details = self._usage.get("output_tokens_details")
        thinking = _int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
        out.append(ir.StreamEnd(
            stop_reason=reason, usage=usage_to_ir(self._usage) if self._usage else None,
            stop_sequence=self._stop_sequence, reasoning_tokens=thinking,
        ))
        return out


_HANDLED = frozenset({
    "error", "message_start", "content_block_start", "content_block_delta", "content_block_stop",
    "message_delta", "message_stop",
})


# --------------------------------------------------------------------------------------- encoder


@dataclass(slots=True)
class _OutPart:
    kind: str  # "text" | "reasoning" | "tool_call"
    block: int | None = None  # Anthropic block index while open; None before start / after stop
    started: bool = False  # a block was emitted for this part at least once
    redacted: bool = False
    tool_call_id: str | None = None
    tool_name: str | None = None


class StreamEncoder:
    """IR stream events -> Anthropic SSE bytes, in the official event order.

    Anthropic blocks are strictly sequential, so a part that starts (or receives a delta) while
    another block is open closes that block first. A thinking/redacted_thinking block is only
    opened at the first reasoning delta, because the block type depends on it (text/signature ->
    thinking, encrypted only -> redacted_thinking). A late delta for an already closed text or
    reasoning part opens a new block; a late delta for a closed tool call cannot be expressed
    (a second tool_use with the same id would be invalid) and is dropped.
    """

    def __init__(self, request: ir.Request, response_id: str, model: str, created: int) -> None:
        self._id = response_id if response_id.startswith("msg_") else f"msg_{response_id}"
        self._model = model
        self._parts: dict[int, _OutPart] = {}
        self._open: int | None = None  # IR index of the part whose block is open
        self._next_block = 0
        self._started = False
        self._finished = False
        self._tool_used = False

    # -- wire ------------------------------------------------------------------------------------
    @staticmethod
    def _sse(payload: dict[str, Any]) -> bytes:
        return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _message_start(self, usage: ir.Usage | None) -> bytes:
        self._started = True
        wire = usage_wire(usage, output=False)
        wire["output_tokens"] = 0
        return self._sse({"type": "message_start", "message": {
            "id": self._id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": wire,
        }})

    # -- events ----------------------------------------------------------------------------------
    def encode(self, event: ir.StreamEvent) -> bytes:
        if self._finished:
            return b""
        if isinstance(event, ir.StreamError):
            return self.error(event.message, event.type, event.code)
        if isinstance(event, ir.StreamStart):
            return b"" if self._started else self._message_start(event.usage)
        head = b"" if self._started else self._message_start(None)
        if isinstance(event, ir.PartStart):
            part = _OutPart(event.kind, tool_call_id=event.tool_call_id, tool_name=event.tool_name)
            self._parts[event.index] = part
            return head + (self._ensure_open(event.index, part) if event.kind != "reasoning" else self._close_open())
        if isinstance(event, ir.TextDelta):
            return head + self._text(event)
        if isinstance(event, ir.ReasoningDelta):
            return head + self._reasoning(event)
        if isinstance(event, ir.ToolArgsDelta):
            return head + self._tool_args(event)
        if isinstance(event, ir.PartStop):
            return head + (self._close_open() if self._open == event.index else b"")
        if isinstance(event, ir.StreamEnd):
            return head + self._end(event)
        return head

    def _close_open(self) -> bytes:
        if self._open is None:
            return b""
        part = self._parts[self._open]
        out = self._sse({"type": "content_block_stop", "index": part.block})
        part.block = None
        self._open = None
        return out

    def _ensure_open(self, index: int, part: _OutPart, block: dict[str, Any] | None = None) -> bytes:
        """Make `index` the open block (closing another one), emitting content_block_start."""
        if self._open == index:
            return b""
        out = self._close_open()
        if block is None:
            if part.kind == "tool_call":
                block = {"type": "tool_use", "id": part.tool_call_id or f"toolu_{self._id[4:]}_{index}",
                         "name": part.tool_name or "", "input": {}}
                self._tool_used = True
            elif part.kind == "reasoning":
                block = {"type": "thinking", "thinking": "", "signature": ""}
            else:
                block = {"type": "text", "text": ""}
            part.redacted = False
        part.block = self._next_block
        part.started = True
        self._next_block += 1
        self._open = index
        return out + self._sse({"type": "content_block_start", "index": part.block, "content_block": block})

    def _part(self, index: int, kind: str) -> _OutPart:
        part = self._parts.get(index)
        if part is None:  # a delta without PartStart: tolerate it
            part = self._parts[index] = _OutPart(kind)
        return part

    def _text(self, event: ir.TextDelta) -> bytes:
        if not event.text:
            return b""
        part = self._part(event.index, "text")
        if part.kind == "tool_call":
            return self._tool_args(ir.ToolArgsDelta(event.index, event.text))
        if part.kind == "reasoning":
            return self._reasoning(ir.ReasoningDelta(event.index, text=event.text))
        out = self._ensure_open(event.index, part)
        return out + self._sse({"type": "content_block_delta", "index": part.block,
                                "delta": {"type": "text_delta", "text": event.text}})

    def _reasoning(self, event: ir.ReasoningDelta) -> bytes:
        part = self._part(event.index, "reasoning")
        out = b""
        if self._open != event.index:
            if event.text or event.signature:
                out += self._ensure_open(event.index, part)
            elif event.encrypted and not part.started:
                part.redacted = True
                return self._ensure_open(event.index, part, {"type": "redacted_thinking", "data": event.encrypted})
            else:
                return b""
        if part.redacted:
            return out  # a redacted block is complete in its start event
        if event.text:
            out += self._sse({"type": "content_block_delta", "index": part.block,
                              "delta": {"type": "thinking_delta", "thinking": event.text}})
        if event.signature:
            out += self._sse({"type": "content_block_delta", "index": part.block,
                              "delta": {"type": "signature_delta", "signature": event.signature}})
        return out

    def _tool_args(self, event: ir.ToolArgsDelta) -> bytes:
        part = self._part(event.index, "tool_call")
        if part.kind != "tool_call" or not event.arguments:
            return b""
        if self._open != event.index:
            if part.started:
                return b""  # closed already: see the class docstring
            out = self._ensure_open(event.index, part)
        else:
            out = b""
        return out + self._sse({"type": "content_block_delta", "index": part.block,
                                "delta": {"type": "input_json_delta", "partial_json": event.arguments}})

    def _end(self, event: ir.StreamEnd) -> bytes:
        out = self._close_open()
        self._finished = True
        usage: dict[str, Any] = {"output_tokens": 0}
        if event.usage is not None:
            usage = usage_wire(event.usage, reasoning_tokens=event.reasoning_tokens)
            if event.usage.prompt_tokens <= 0:  # input side unknown: keep message_start's values
                for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation"):
                    usage.pop(key)
        reason = stop_from_ir(event.stop_reason, event.stop_sequence, self._tool_used)
        out += self._sse({"type": "message_delta",
                          "delta": {"stop_reason": reason, "stop_sequence": event.stop_sequence},
                          "usage": usage})
        return out + self._sse({"type": "message_stop"})

    def error(self, message: str, type: str, code: str | None = None) -> bytes:
        """An in-band error event: https://docs.anthropic.com/en/api/messages-streaming#error-events"""
        self._finished = True
        return self._sse({"type": "error", "error": {"type": error_type(type), "message": message}})

    def close(self) -> bytes:
        return b""
