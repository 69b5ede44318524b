"""OpenAI Responses streams <-> IR stream events.

Event reference: https://platform.openai.com/docs/api-reference/responses-streaming. A stream is
`response.created`, `response.in_progress`, then per output item `response.output_item.added`,
its content events (`response.content_part.added` / `response.output_text.delta` / ... for a
message, `response.function_call_arguments.delta` for a call, `response.reasoning_summary_*` for
reasoning), `response.output_item.done`, and finally `response.completed` (or
`response.incomplete` / `response.failed`) carrying the whole response object. Every event has a
`sequence_number`; SSE frames are `event: <type>\\ndata: <json>\\n\\n`.

Memory: the terminal event repeats the whole output, so the encoder must keep a copy of what it
streamed. That copy is capped at MAX_KEPT_BYTES (4 MiB) per stream: the SPEC requires bounded
memory (a 100 MB answer must not cost 100 MB), and a gateway serving many long streams cannot
hold each one whole. Deltas are always forwarded in full; only the copy in the `.done` events and
in the final response object is cut, and that object then carries `metadata.truncated = "true"`
(metadata values are strings in the API). The decoder keeps nothing but per-item bookkeeping.

IR gaps (see the report): ReasoningDelta does not say whether text is a summary or raw reasoning
text (both decode to `text`; the encoder streams IR reasoning text as a summary, what Codex shows),
stream events cannot carry builtin tool call items or text annotations, and refusal deltas
decode as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from relay import ir
from relay.converters.responses_items import (
    custom_names,
    item_id,
    join_namespace,
    message_item,
    namespace_map,
    reasoning_item,
    response_object,
    status_from_ir,
    stop_reason,
    unwrap_custom_input,
    usage_from_ir,
    usage_to_ir,
)
from relay.protocols.sse import SSESplitter, event_data

__all__ = ["MAX_KEPT_BYTES", "StreamDecoder", "StreamEncoder"]

MAX_KEPT_BYTES = 4 * 1024 * 1024
_ERROR_CODES = frozenset({"server_error", "rate_limit_exceeded", "invalid_prompt"})


def _event_name(raw: bytes) -> str | None:
    for line in raw.split(b"\n"):
        if line.startswith(b"event:"):
            return line[6:].strip().decode("utf-8", "replace")
    return None


# --------------------------------------------------------------------------------------- decoder


@dataclass(slots=True)
class _Item:
    kind: str  # "message", "tool_call", "reasoning" or "other"
    index: int = -1  # IR part index (tool_call / reasoning)
    seen: bool = False  # content arrived as deltas (so `.done` texts are not repeated)
    texts: dict[int, int] = field(default_factory=dict)  # message: content_index -> IR index (open)
    had_text: bool = False  # message: a content part was opened


class StreamDecoder:
    """Responses SSE bytes (from an upstream) -> IR stream events."""

    def __init__(self) -> None:
        self._sse = SSESplitter()
        self.remember_parsed = False  # PassthroughStream reads each event's JSON off `parsed`, not parsing twice
        self.parsed: tuple[bytes, Any] | None = None
        self._items: dict[int, _Item] = {}  # output_index -> open item
        self._next = 0
        self._seen_text: set[int] = set()
        self._started = False
        self._finished = False
        self._last_type: str | None = None

    def feed(self, data: bytes) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for raw in self._sse.feed(data):
            self._handle(raw, out)
        return out

    def feed_event(self, event: bytes) -> list[ir.StreamEvent]:
        """One SSE event already split off (the pass-through splits once for itself and us)."""
        out: list[ir.StreamEvent] = []
        self._handle(event, out)
        return out

    def close(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        rest = self._sse.close()
        if rest:
            self._handle(rest, out)
        if not self._finished:
            self._finished = True
            out.append(ir.StreamError("The upstream stream ended before response.completed."))
        return out

    def _open(self, out: list[ir.StreamEvent], kind: str, **names: Any) -> int:
        index, self._next = self._next, self._next + 1
        out.append(ir.PartStart(index, kind, **names))  # type: ignore[arg-type]
        return index

    def _item(self, out: list[ir.StreamEvent], payload: dict[str, Any], item: dict[str, Any] | None = None) -> _Item:
        """The open item at the event's output_index, opened on the fly if its `added` was missed."""
        oi = payload.get("output_index", -1)
        state = self._items.get(oi)
        if state is not None:
            return state
        item = item if item is not None else {}
        kind = item.get("type") or ("reasoning" if ".reasoning" in str(payload.get("type")) else
                                    "function_call" if "call" in str(payload.get("type")) else "message")
        self._last_type = kind
        if kind in ("function_call", "custom_tool_call"):
            name = str(item.get("name") or "")
            if isinstance(item.get("namespace"), str) and item["namespace"]:
                name = join_namespace(item["namespace"], name)
            state = _Item("tool_call", self._open(out, "tool_call", tool_call_id=str(item.get("call_id") or ""),
                                                  tool_name=name))
            args = item.get("input" if kind == "custom_tool_call" else "arguments")
            if isinstance(args, str) and args:
                out.append(ir.ToolArgsDelta(state.index, args))
                state.seen = True
        elif kind == "reasoning":
            state = _Item("reasoning", self._open(out, "reasoning", reasoning_id=item.get("id")))
        else:
            state = _Item("message" if kind == "message" else "other")
        self._items[oi] = state
        return state

    def _text(self, out: list[ir.StreamEvent], payload: dict[str, Any]) -> int:
        state = self._item(out, payload)
        ci = payload.get("content_index", 0)
        if ci not in state.texts:
            state.texts[ci] = self._open(out, "text")
            state.had_text = True
        return state.texts[ci]

    def _stop_item(self, out: list[ir.StreamEvent], oi: Any) -> None:
        state = self._items.pop(oi, None)
        if state is None:
            return
        for index in state.texts.values():
            out.append(ir.PartStop(index))
        if state.index >= 0:
            out.append(ir.PartStop(state.index))

    def _handle(self, raw: bytes, out: list[ir.StreamEvent]) -> None:
        data = event_data(raw)
        if self._finished or data is None:
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._finished = True
            out.append(ir.StreamError("The upstream sent an invalid stream event."))
            return
        if self.remember_parsed:
            self.parsed = (raw, payload)
        if not isinstance(payload, dict):
            return
        kind = payload.get("type") or _event_name(raw)
        response = payload.get("response") if isinstance(payload.get("response"), dict) else None
        if response is not None and not self._started:
            self._started = True
            created = response.get("created_at")
            out.append(ir.StreamStart(str(response.get("id") or ""), str(response.get("model") or ""),
                                      int(created) if isinstance(created, int | float) else 0))
        if kind == "response.output_item.added":
            self._item(out, payload, payload.get("item") if isinstance(payload.get("item"), dict) else {})
        elif kind == "response.content_part.added":
            part = payload.get("part") or {}
            if part.get("type") in ("output_text", "refusal"):
                index = self._text(out, payload)
                text = part.get("text") or part.get("refusal")
                if isinstance(text, str) and text:
                    out.append(ir.TextDelta(index, text))
                    self._seen_text.add(index)
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            index = self._text(out, payload)
            out.append(ir.TextDelta(index, str(payload.get("delta") or "")))
            self._seen_text.add(index)
        elif kind in ("response.output_text.done", "response.refusal.done"):
            index = self._text(out, payload)
            text = payload.get("text") or payload.get("refusal")
            if index not in self._seen_text and isinstance(text, str) and text:
                out.append(ir.TextDelta(index, text))
                self._seen_text.add(index)
        elif kind == "response.content_part.done":
            state = self._items.get(payload.get("output_index", -1))
            index = state.texts.pop(payload.get("content_index", 0), None) if state else None
            if index is not None:
                out.append(ir.PartStop(index))
        elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            state = self._item(out, payload)
            if state.index >= 0:
                out.append(ir.ToolArgsDelta(state.index, str(payload.get("delta") or "")))
                state.seen = True
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            state = self._item(out, payload)
            if state.index >= 0:
                out.append(ir.ReasoningDelta(state.index, text=str(payload.get("delta") or "")))
                state.seen = True
        elif kind == "response.reasoning_summary_part.added":
            state = self._item(out, payload)
            if state.seen and state.index >= 0 and payload.get("summary_index", 0) > 0:
                out.append(ir.ReasoningDelta(state.index, text="\n\n"))  # between summary parts
        elif kind == "response.output_item.done":
            self._item_done(out, payload)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self._end(out, kind, response or {})
        elif kind == "error":
            self._finished = True
            out.append(ir.StreamError(str(payload.get("message") or "upstream error"), code=payload.get("code")))
        # Other events (web_search_call.*, annotation.added, in_progress, ...) carry nothing the IR streams.

    def _item_done(self, out: list[ir.StreamEvent], payload: dict[str, Any]) -> None:
        item = payload.get("item") if isinstance(payload.get("item"), dict) else {}
        state = self._item(out, payload, item)
        kind = item.get("type")
        if state.kind == "tool_call" and not state.seen:
            args = item.get("input" if kind == "custom_tool_call" else "arguments")
            if isinstance(args, str) and args:
                out.append(ir.ToolArgsDelta(state.index, args))
        elif state.kind == "reasoning":
            if not state.seen:
                texts = [s.get("text") for s in item.get("summary") or [] if isinstance(s, dict)]
                texts += [c.get("text") for c in item.get("content") or [] if isinstance(c, dict)]
                text = "\n\n".join(t for t in texts if isinstance(t, str) and t)
                if text:
                    out.append(ir.ReasoningDelta(state.index, text=text))
            if isinstance(item.get("encrypted_content"), str):
                # Only the done item's encrypted_content is complete (the `added` one may not be).
                out.append(ir.ReasoningDelta(state.index, encrypted=item["encrypted_content"]))
        elif state.kind == "message" and not state.had_text:  # content parts never announced
            for ci, content in enumerate(item.get("content") or []):
                text = (content.get("text") or content.get("refusal")) if isinstance(content, dict) else None
                if isinstance(text, str) and text:
                    index = self._text(out, {"output_index": payload.get("output_index", -1), "content_index": ci})
                    out.append(ir.TextDelta(index, text))
        self._stop_item(out, payload.get("output_index", -1))

    def _end(self, out: list[ir.StreamEvent], kind: str, response: dict[str, Any]) -> None:
        self._finished = True
        for oi in sorted(self._items):
            self._stop_item(out, oi)
        if kind == "response.failed":
            error = response.get("error") if isinstance(response.get("error"), dict) else {}
            out.append(ir.StreamError(str(error.get("message") or "The upstream response failed."),
                                      code=error.get("code")))
            return
        output = response.get("output")
        last = output[-1].get("type") if isinstance(output, list) and output and isinstance(output[-1], dict) else None
        usage, reasoning_tokens = usage_to_ir(response.get("usage"))
        out.append(ir.StreamEnd(
            stop_reason=stop_reason(response.get("status") or ("incomplete" if kind == "response.incomplete" else
                                                             "completed"),
                                    response.get("incomplete_details"), last or self._last_type),
            usage=usage if response.get("usage") else None, reasoning_tokens=reasoning_tokens))


# --------------------------------------------------------------------------------------- encoder


@dataclass(slots=True)
class _Out:
    kind: str  # "text", "reasoning", "tool_call"
    output_index: int
    item_id: str
    kept: list[str] = field(default_factory=list)  # text / arguments kept for the done events
    call: ir.ToolCallPart | None = None
    custom: bool = False
    buffered: bool | None = None  # custom call arriving as {"input": ...} JSON: held until done
    reasoning: ir.ReasoningPart | None = None
    summary_open: bool = False


class StreamEncoder:
    """IR stream events -> Responses SSE bytes (for the caller)."""

    def __init__(self, request: ir.Request, response_id: str, model: str, created: int) -> None:
        self._request = request
        self._rid, self._model, self._created = response_id, model, created
        self._names, self._custom = namespace_map(request.tools), custom_names(request.tools)
        self._seq = 0
        self._started = self._finished = False
        self._open: dict[int, _Out] = {}  # IR part index -> item being streamed
        self._output: list[dict[str, Any] | None] = []  # finished items by output_index
        self._budget = MAX_KEPT_BYTES
        self._truncated = False
        self._usage: ir.Usage | None = None

    # -- framing -----------------------------------------------------------------------------
    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        body = {"type": kind, "sequence_number": self._seq, **payload}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"

    def _keep(self, item: _Out, text: str) -> None:
        if self._budget <= 0 or not text:
            self._truncated = self._truncated or bool(text)
            return
        size = len(text.encode())
        if size > self._budget:
            text = text.encode()[: self._budget].decode("utf-8", "ignore")
            self._truncated, size = True, self._budget
        self._budget -= size
        item.kept.append(text)

    def _response(self, status: str) -> dict[str, Any]:
        return response_object(self._request, self._rid, self._model, self._created, status)

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        created = self._response("in_progress")
        return self._event("response.created", {"response": created}) + self._event(
            "response.in_progress", {"response": created})

    # -- items -------------------------------------------------------------------------------
    def _begin(self, event: ir.PartStart) -> bytes:
        oi = len(self._output)
        self._output.append(None)
        if event.kind == "text":
            item = self._open[event.index] = _Out("text", oi, item_id("msg", self._rid, oi))
            msg = message_item(item.item_id, [], "in_progress")
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            return self._event("response.output_item.added", {"output_index": oi, "item": msg}) + self._event(
                "response.content_part.added", {"item_id": item.item_id, "output_index": oi, "content_index": 0,
                                                "part": part})
        if event.kind == "reasoning":
            rid = event.reasoning_id or item_id("rs", self._rid, oi)
            item = self._open[event.index] = _Out("reasoning", oi, rid, reasoning=ir.ReasoningPart(id=rid))
            return self._event("response.output_item.added", {"output_index": oi, "item": {
                "id": rid, "type": "reasoning", "summary": []}})
        call = ir.ToolCallPart(id=event.tool_call_id or item_id("call", self._rid, oi), name=event.tool_name or "")
        custom = call.name in self._custom
        item = self._open[event.index] = _Out("tool_call", oi, item_id("ctc" if custom else "fc", self._rid, oi),
                                              call=call, custom=custom)
        return self._event("response.output_item.added", {"output_index": oi, "item": self._call_item(item, "in_progress")})

    def _call_item(self, item: _Out, status: str, arguments: str = "") -> dict[str, Any]:
        assert item.call is not None
        out: dict[str, Any] = {"id": item.item_id, "type": "custom_tool_call" if item.custom else "function_call"}
        out["call_id"] = item.call.id
        if item.call.name in self._names:
            out["namespace"], out["name"] = self._names[item.call.name]
        else:
            out["name"] = item.call.name
        if item.custom:
            out["input"] = arguments
        else:
            out["arguments"], out["status"] = arguments, status
        return out

    def _args(self, item: _Out, delta: str) -> bytes:
        self._keep(item, delta)
        if item.custom and item.buffered is None and delta.strip():
            # A custom tool emulated as a function (Anthropic) answers `{"input": "..."}`: that
            # JSON cannot be unwrapped piecewise, so such a call is held and sent whole at its end.
            item.buffered = delta.lstrip().startswith("{")
        if item.buffered or not delta:
            return b""
        kind = "response.custom_tool_call_input.delta" if item.custom else "response.function_call_arguments.delta"
        return self._event(kind, {"item_id": item.item_id, "output_index": item.output_index, "delta": delta})

    def _item_for(self, index: int, kind: str) -> tuple[_Out, bytes]:
        """The open item for IR part `index`; a delta for a part never started starts it."""
        item = self._open.get(index)
        if item is not None:
            return item, b""
        prefix = self._begin(ir.PartStart(index, kind))  # type: ignore[arg-type]
        return self._open[index], prefix

    def _finish(self, index: int, status: str = "completed") -> bytes:
        item = self._open.pop(index, None)
        if item is None:
            return b""
        oi, iid, text = item.output_index, item.item_id, "".join(item.kept)
        if item.kind == "text":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            final = message_item(iid, [ir.TextPart(text)], status)
            data = self._event("response.output_text.done", {
                "item_id": iid, "output_index": oi, "content_index": 0, "text": text, "logprobs": []})
            data += self._event("response.content_part.done", {
                "item_id": iid, "output_index": oi, "content_index": 0, "part": part})
        elif item.kind == "reasoning":
            assert item.reasoning is not None
            item.reasoning.text = text
            final = reasoning_item(item.reasoning, iid)
            data = b""
            if item.summary_open:
                data = self._event("response.reasoning_summary_text.done", {
                    "item_id": iid, "output_index": oi, "summary_index": 0, "text": text})
                data += self._event("response.reasoning_summary_part.done", {
                    "item_id": iid, "output_index": oi, "summary_index": 0,
                    "part": {"type": "summary_text", "text": text}})
        else:
            data = b""
            if item.buffered:
                text = unwrap_custom_input(text)
                data = self._event("response.custom_tool_call_input.delta", {
                    "item_id": iid, "output_index": oi, "delta": text})
            final = self._call_item(item, status, text)
            done = "response.custom_tool_call_input.done" if item.custom else "response.function_call_arguments.done"
            data += self._event(done, {"item_id": iid, "output_index": oi, ("input" if item.custom else "arguments"): text})
        self._output[oi] = final
        return data + self._event("response.output_item.done", {"output_index": oi, "item": final})

    # -- public ------------------------------------------------------------------------------
    def encode(self, event: ir.StreamEvent) -> bytes:
        if self._finished:
            return b""
        if isinstance(event, ir.StreamStart):
            self._usage = event.usage
            return self._start()
        head = self._start()
        if isinstance(event, ir.PartStart):
            return head + self._finish(event.index) + self._begin(event)
        if isinstance(event, ir.TextDelta):
            item, prefix = self._item_for(event.index, "text")
            self._keep(item, event.text)
            return head + prefix + self._event("response.output_text.delta", {
                "item_id": item.item_id, "output_index": item.output_index, "content_index": 0,
                "delta": event.text, "logprobs": []})
        if isinstance(event, ir.ToolArgsDelta):
            item, prefix = self._item_for(event.index, "tool_call")
            return head + prefix + self._args(item, event.arguments)
        if isinstance(event, ir.ReasoningDelta):
            return head + self._reasoning(event)
        if isinstance(event, ir.PartStop):
            return head + self._finish(event.index)
        if isinstance(event, ir.StreamEnd):
            return head + self._end(event)
        if isinstance(event, ir.StreamError):
            return head + self._fail(event)
        return head

    def _reasoning(self, event: ir.ReasoningDelta) -> bytes:
        item, data = self._item_for(event.index, "reasoning")
        assert item.reasoning is not None
        if event.signature:
            item.reasoning.signature = (item.reasoning.signature or "") + event.signature
        if event.encrypted is not None:
            item.reasoning.encrypted = event.encrypted
        if event.text:
            if not item.summary_open:
                item.summary_open = True
                data += self._event("response.reasoning_summary_part.added", {
                    "item_id": item.item_id, "output_index": item.output_index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}})
            self._keep(item, event.text)
            data += self._event("response.reasoning_summary_text.delta", {
                "item_id": item.item_id, "output_index": item.output_index, "summary_index": 0, "delta": event.text})
        return data

    def _final(self, status: str) -> dict[str, Any]:
        obj = self._response(status)
        obj["output"] = [item for item in self._output if item is not None]
        if self._truncated:
            obj["metadata"] = {**obj["metadata"], "truncated": "true"}
        return obj

    def _end(self, event: ir.StreamEnd) -> bytes:
        status, incomplete = status_from_ir(event.stop_reason)
        item_status = "incomplete" if status == "incomplete" else "completed"
        data = b"".join(self._finish(index, item_status) for index in sorted(self._open))
        self._finished = True
        obj = self._final(status)
        obj["incomplete_details"] = incomplete
        if status == "failed":
            obj["error"] = {"code": "server_error", "message": "The upstream model failed to complete the response."}
        obj["usage"] = usage_from_ir(event.usage or self._usage or ir.Usage(), event.reasoning_tokens)
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status, "response.failed")
        return data + self._event(kind, {"response": obj})

    def _fail(self, event: ir.StreamError) -> bytes:
        data = b"".join(self._finish(index, "incomplete") for index in sorted(self._open))
        self._finished = True
        obj = self._final("failed")
        code = event.code if event.code in _ERROR_CODES else "server_error"
        obj["error"] = {"code": code, "message": event.message}
        if self._usage is not None:
            obj["usage"] = usage_from_ir(self._usage)
        return data + self._event("response.failed", {"response": obj})

    def error(self, message: str, type: str = "server_error", code: str | None = None) -> bytes:
        """The documented in-band `error` event
        (https://platform.openai.com/docs/api-reference/responses-streaming/error); `code` falls
        back to the error type so the caller always gets a machine-readable reason."""
        self._finished = True
        return self._event("error", {"code": code or type, "message": message, "param": None})

    def close(self) -> bytes:
        return b""
