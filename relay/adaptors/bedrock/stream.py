"""Bedrock stream bodies (event-stream frames) -> IR stream events.

Both streaming operations answer `application/vnd.amazon.eventstream`; the frame's
`:event-type` header tells them apart, so one decoder serves both:
- InvokeModelWithResponseStream: `chunk` events whose payload is `{"bytes": base64}`, the bytes
  being one Anthropic Messages stream event as JSON (message_start, content_block_delta, ...)
  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html
  They go to the Messages converter's StreamDecoder as the SSE event Anthropic would have sent.
- ConverseStream: messageStart, contentBlockStart/Delta/Stop, messageStop, metadata
  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
Exceptions arrive as frames with `:message-type: exception` and `:exception-type` (throttling,
modelStreamError, validation, internalServer, serviceUnavailable): each ends the stream with an
`ir.StreamError`, as does a frame that fails its CRC check.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from ... import ir
from ...converters import converter
from ...converters.messages_stream import is_structured_tool
from .converse import new_id, stop_reason, usage_to_ir
from .eventstream import EventStreamDecoder, EventStreamError, Message

_ERROR_TYPES = {
    "throttlingException": "rate_limit_error",
    "validationException": "invalid_request_error",
    "accessDeniedException": "permission_error",
}


class BedrockStreamDecoder:
    """feed(bytes) / close() like the converters' StreamDecoders (relay.adaptors.base)."""

    def __init__(self, model: str = "") -> None:
        self._frames = EventStreamDecoder()
        self._claude: Any = None  # the Messages StreamDecoder, created at the first chunk
        self._converse = ConverseStreamState(model)
        self._seen = False
        self._done = False

    def feed(self, data: bytes) -> list[ir.StreamEvent]:
        if self._done:
            return []
        try:
            messages = self._frames.feed(data)
        except EventStreamError as exc:
            return self._fail(ir.StreamError(f"the upstream's event stream is corrupt: {exc}"))
        out: list[ir.StreamEvent] = []
        for message in messages:
            self._message(message, out)
            if self._done:
                break
        return out

    def close(self) -> list[ir.StreamEvent]:
        if self._done:
            return []
        if self._frames.pending:
            return self._fail(ir.StreamError("the upstream stream ended in the middle of an event"))
        if self._claude is not None:
            return self._watch(self._claude.close(), [])
        out: list[ir.StreamEvent] = []
        if self._converse.stopped:
            self._converse.end(out)  # messageStop came, metadata (usage) did not
            self._done = True
            return out
        return self._fail(ir.StreamError("upstream stream ended early" if self._seen else "the upstream stream ended without any event"))

    # -- internals

    def _fail(self, error: ir.StreamError) -> list[ir.StreamEvent]:
        self._done = True
        return [error]

    def _watch(self, events: list[ir.StreamEvent], out: list[ir.StreamEvent]) -> list[ir.StreamEvent]:
        out.extend(events)
        if any(isinstance(e, ir.StreamEnd | ir.StreamError) for e in events):
            self._done = True
        return out

    def _message(self, message: Message, out: list[ir.StreamEvent]) -> None:
        self._seen = True
        kind = message.message_type
        if kind == "exception":
            out.append(_exception(str(message.headers.get(":exception-type") or "exception"), message.payload))
            self._done = True
            return
        if kind == "error":  # the generic event-stream error message
            code = str(message.headers.get(":error-code") or "error")
            text = str(message.headers.get(":error-message") or "the upstream reported an error")
            out.append(ir.StreamError(f"{code}: {text}", type="server_error", code=code))
            self._done = True
            return
        event_type = message.event_type
        if event_type == "initial-response":
            return
        try:
            data = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError:
            out.append(ir.StreamError(f"the upstream sent a {event_type or 'stream'} event that is not JSON"))
            self._done = True
            return
        if not isinstance(data, dict):
            return
        if event_type == "chunk":
            self._chunk(data, out)
        else:
            self._watch(self._converse.event(event_type, data), out)

    def _chunk(self, data: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        try:
            raw = base64.b64decode(data.get("bytes") or b"", validate=True)
            event = orjson.loads(raw)
        except (binascii.Error, ValueError, TypeError):
            out.append(ir.StreamError("the upstream sent a chunk that is not base64 JSON"))
            self._done = True
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return
        if self._claude is None:
            self._claude = converter("messages").StreamDecoder()
        # Re-serialised: compact JSON has no newline that would split the SSE data line.
        sse = b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
        self._watch(self._claude.feed(sse), out)


def _exception(name: str, payload: bytes) -> ir.StreamError:
    message = ""
    try:
        data = orjson.loads(payload) if payload else {}
        if isinstance(data, dict):
            message = str(data.get("message") or data.get("Message") or "")
    except orjson.JSONDecodeError:
        message = payload[:300].decode("utf-8", "replace")
    text = f"{name}: {message}" if message else name
    return ir.StreamError(text, type=_ERROR_TYPES.get(name, "server_error"), code=name)


class ConverseStreamState:
    """ConverseStream events (already unframed: event type + JSON payload) -> IR events.

    Text and reasoning blocks have no contentBlockStart; a block opens at its first delta.
    `messageStop` carries the stop reason and `metadata` (after it) the usage, so the stream
    ends at `metadata`, or at the end of input when a proxy dropped it.
    """

    def __init__(self, model: str = "") -> None:
        self.model = model  # ConverseStream does not name the model
        self.started = False
        self.done = False
        self._parts: dict[int, tuple[int, str]] = {}  # contentBlockIndex -> (IR index, kind)
        self._next = 0
        self._open: set[int] = set()
        self._real_calls = False
        self._stop: Any = None
        self._stopped = False
        self._usage: ir.Usage | None = None

    def event(self, kind: str, data: dict[str, Any]) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        if self.done:
            return out
        if not self.started:
            self.started = True
            out.append(ir.StreamStart(id=new_id(), model=self.model))
        if kind == "contentBlockStart":
            start = data.get("start")
            use = start.get("toolUse") if isinstance(start, dict) else None
            if isinstance(use, dict):
                if is_structured_tool(use.get("name")):
                    self._part(data, "text", out)
                else:
                    self._real_calls = True
                    self._part(data, "tool_call", out, call_id=str(use.get("toolUseId") or ""), name=str(use.get("name") or ""))
        elif kind == "contentBlockDelta":
            self._delta(data, out)
        elif kind == "contentBlockStop":
            entry = self._parts.get(_index(data.get("contentBlockIndex")))
            if entry is not None and entry[0] in self._open:
                self._open.discard(entry[0])
                out.append(ir.PartStop(entry[0]))
        elif kind == "messageStop":
            self._close_parts(out)
            self._stopped = True
            self._stop = data.get("stopReason")
        elif kind == "metadata":
            self._usage = usage_to_ir(data.get("usage"))
            if self._stopped:
                self.end(out)
        return out

    def end(self, out: list[ir.StreamEvent]) -> None:
        """At `metadata`, or at end of input after `messageStop`."""
        if self.done or not self._stopped:
            return
        self.done = True
        out.append(ir.StreamEnd(stop_reason=stop_reason(self._stop, real_tool_calls=self._real_calls), usage=self._usage))

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _part(self, data: dict[str, Any], kind: str, out: list[ir.StreamEvent], call_id: str | None = None, name: str | None = None) -> tuple[int, str]:
        block = _index(data.get("contentBlockIndex"))
        entry = self._parts.get(block)
        if entry is None:
            entry = (self._next, kind)
            self._next += 1
            self._parts[block] = entry
            self._open.add(entry[0])
            out.append(ir.PartStart(entry[0], kind, tool_call_id=call_id, tool_name=name))  # type: ignore[arg-type]
        return entry

    def _delta(self, data: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return
        if isinstance(delta.get("text"), str):
            index, _ = self._part(data, "text", out)
            if delta["text"]:
                out.append(ir.TextDelta(index, delta["text"]))
        elif isinstance(delta.get("toolUse"), dict):
            index, kind = self._part(data, "tool_call", out, call_id="", name="")
            fragment = delta["toolUse"].get("input")
            if isinstance(fragment, str) and fragment:
                out.append(ir.TextDelta(index, fragment) if kind == "text" else ir.ToolArgsDelta(index, fragment))
        elif isinstance(delta.get("reasoningContent"), dict):
            reasoning = delta["reasoningContent"]
            index, _ = self._part(data, "reasoning", out)
            if isinstance(reasoning.get("text"), str) and reasoning["text"]:
                out.append(ir.ReasoningDelta(index, text=reasoning["text"]))
            if isinstance(reasoning.get("signature"), str) and reasoning["signature"]:
                out.append(ir.ReasoningDelta(index, signature=reasoning["signature"]))
            if isinstance(reasoning.get("redactedContent"), str) and reasoning["redactedContent"]:
                out.append(ir.ReasoningDelta(index, encrypted=reasoning["redactedContent"]))

    def _close_parts(self, out: list[ir.StreamEvent]) -> None:
        for index in sorted(self._open):
            out.append(ir.PartStop(index))
        self._open.clear()


def _index(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
