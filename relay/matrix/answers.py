"""What a client got, read per format: the text and tool calls of a Chat completion, a Responses
object or a Claude message, stream or not.

The stream readers enforce each format's event grammar and raise `Bad` with a short reason:
Chat chunks (`chat.completion.chunk` objects up to `data: [DONE]`, with a finish_reason), the
Responses sequence (`response.created` first, `response.completed` last, deltas consistent with
their `.done` events and the final response), and the Anthropic Messages grammar (message_start,
(content_block_start, content_block_delta*, content_block_stop)*, message_delta, message_stop).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Answer",
    "Bad",
    "SSEEvent",
    "ToolCall",
    "chat_answer",
    "chat_stream_answer",
    "claude_answer",
    "claude_stream_answer",
    "error_message",
    "parse_sse",
    "response_answer",
    "response_stream_answer",
]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: Any  # a JSON string (OpenAI formats) or an already-parsed object (Claude)


@dataclass(slots=True)
class Answer:
    """What the model said, whatever the format: its text and its tool calls."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)


class Bad(Exception):
    """A FAIL with its reason, raised from deep inside a format check."""


# ----------------------------------------------------------------------------------- parsing
def parse_sse(text: str) -> list[SSEEvent]:
    """Server-Sent Events: `event:`/`data:` fields, multi-line data joined by newlines, comments skipped."""
    events: list[SSEEvent] = []
    name: str | None = None
    data: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data:
                events.append(SSEEvent(name, "\n".join(data)))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        fname, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if fname == "event":
            name = value
        elif fname == "data":
            data.append(value)
    if data:
        events.append(SSEEvent(name, "\n".join(data)))
    return events


def _json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


def error_message(payload: Any) -> str | None:
    """The message of an OpenAI (`{"error": {...}}`) or Anthropic (`{"type": "error", ...}`) error."""
    if not isinstance(payload, dict):
        return None
    err = payload.get("error")
    if err is None and payload.get("type") == "error":
        err = payload.get("message") or "error"
    if err is None or err is False or err == {}:
        return None
    if isinstance(err, dict):
        msg = err.get("message") or err.get("code") or err.get("type") or json.dumps(err)
        return str(msg)
    return str(err)


# -------------------------------------------------------------------------- chat completions
def chat_answer(payload: dict[str, Any]) -> Answer:
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise Bad("no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise Bad("choices[0] has no message")
    content = message.get("content")
    answer = Answer(text=content if isinstance(content, str) else "")
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            raise Bad("tool_call without function")
        answer.calls.append(ToolCall(str(fn.get("name") or ""), _string_args(fn.get("arguments"))))
    return answer


def _string_args(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad(f"arguments are a {type(value).__name__}, not a JSON string")
    return value


def chat_stream_answer(events: list[SSEEvent]) -> Answer:
    text: list[str] = []
    calls: dict[int, ToolCall] = {}
    done = False
    finish: str | None = None
    for ev in events:
        if done:
            raise Bad("data after [DONE]")
        if ev.data.strip() == "[DONE]":
            done = True
            continue
        chunk = _json(ev.data)
        if not isinstance(chunk, dict):
            raise Bad(f"chunk is not JSON: {ev.data[:40]!r}")
        msg = error_message(chunk)
        if msg:
            raise Bad(f"stream error: {msg}")
        if chunk.get("object") != "chat.completion.chunk":
            raise Bad(f"chunk object is {chunk.get('object')!r}")
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(int(part.get("index", 0)), ToolCall("", ""))
                fn = part.get("function") or {}
                call.name += fn.get("name") or ""
                call.arguments += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    if not done:
        raise Bad("stream ended without [DONE]")
    if finish is None:
        raise Bad("no finish_reason in stream")
    return Answer("".join(text), [calls[i] for i in sorted(calls)])


# ---------------------------------------------------------------------------------- responses
def _response_output(output: Any) -> Answer:
    answer = Answer()
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    answer.text += str(part.get("text") or "")
        elif item.get("type") == "function_call":
            answer.calls.append(ToolCall(str(item.get("name") or ""), _string_args(item.get("arguments"))))
    return answer


def response_answer(payload: dict[str, Any]) -> Answer:
    if payload.get("status") in ("failed", "cancelled"):
        raise Bad(f"status {payload['status']}")
    if not isinstance(payload.get("output"), list):
        raise Bad("no output list")
    return _response_output(payload["output"])


def response_stream_answer(events: list[SSEEvent]) -> Answer:
    if events and events[-1].data.strip() == "[DONE]":
        events = events[:-1]  # the original fork ends Responses streams with [DONE] too
    if not events:
        raise Bad("empty stream")
    typed: list[dict[str, Any]] = []
    last_seq = -1
    for ev in events:
        obj = _json(ev.data)
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise Bad(f"event is not a typed JSON object: {ev.data[:40]!r}")
        kind = obj["type"]
        if ev.event is not None and ev.event != kind:
            raise Bad(f"event name {ev.event} != type {kind}")
        if kind == "error":
            raise Bad(f"stream error: {obj.get('message') or error_message(obj) or 'error'}")
        if kind == "response.failed":
            raise Bad(f"response.failed: {error_message(obj.get('response')) or 'no message'}")
        seq = obj.get("sequence_number")
        if isinstance(seq, int):
            if seq <= last_seq:
                raise Bad(f"sequence_number {seq} after {last_seq}")
            last_seq = seq
        typed.append(obj)
    if typed[0]["type"] != "response.created":
        raise Bad(f"first event is {typed[0]['type']}")
    if typed[-1]["type"] != "response.completed":
        raise Bad(f"last event is {typed[-1]['type']}")
    for obj in typed[1:-1]:
        if obj["type"] in ("response.created", "response.completed"):
            raise Bad(f"{obj['type']} in mid-stream")

    texts: dict[tuple[Any, Any], str] = {}
    args: dict[Any, str] = {}
    done_text: dict[tuple[Any, Any], str] = {}
    items: dict[Any, dict[str, Any]] = {}
    for obj in typed:
        kind = obj["type"]
        item_id = obj.get("item_id")
        if kind.endswith((".delta", ".done")) and "output_item" not in kind and item_id is not None and items:
            if item_id not in items:
                raise Bad(f"{kind.removeprefix('response.')} for unknown item")
        if kind == "response.output_text.delta":
            key = (obj.get("item_id", obj.get("output_index")), obj.get("content_index", 0))
            texts[key] = texts.get(key, "") + str(obj.get("delta") or "")
        elif kind == "response.output_text.done":
            key = (obj.get("item_id", obj.get("output_index")), obj.get("content_index", 0))
            if key in texts and texts[key] != obj.get("text"):
                raise Bad("output_text.done differs from deltas")
            done_text[key] = str(obj.get("text") or "")
        elif kind == "response.function_call_arguments.delta":
            key = obj.get("item_id", obj.get("output_index"))
            args[key] = args.get(key, "") + str(obj.get("delta") or "")
        elif kind == "response.function_call_arguments.done":
            key = obj.get("item_id", obj.get("output_index"))
            if key in args and args[key] != obj.get("arguments"):
                raise Bad("arguments.done differs from deltas")
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = obj.get("item")
            if not isinstance(item, dict):
                raise Bad(f"{kind} without item")
            items[item.get("id", obj.get("output_index"))] = item
            if kind.endswith(".done") and item.get("type") == "function_call":
                key = item.get("id", obj.get("output_index"))
                if key in args and args[key] != item.get("arguments"):
                    raise Bad("function_call item differs from deltas")

    streamed = "".join(texts.values()) or "".join(done_text.values())
    answer = Answer(streamed)
    for key, item in items.items():
        if item.get("type") == "function_call":
            arguments = item.get("arguments") or args.get(key, "")
            answer.calls.append(ToolCall(str(item.get("name") or ""), arguments))
    final = typed[-1].get("response")
    if not isinstance(final, dict):
        raise Bad("response.completed without response")
    if final.get("status") in ("failed", "cancelled", "incomplete"):
        raise Bad(f"completed response has status {final['status']}")
    completed = _response_output(final.get("output"))
    if streamed and completed.text and completed.text != streamed:
        raise Bad("completed output differs from deltas")
    if not answer.text:
        answer.text = completed.text
    if not answer.calls:
        answer.calls = completed.calls
    return answer


# ----------------------------------------------------------------------------------- claude
def claude_answer(payload: dict[str, Any]) -> Answer:
    if payload.get("type") != "message":
        raise Bad(f"type is {payload.get('type')!r}, not message")
    content = payload.get("content")
    if not isinstance(content, list) or not content:
        raise Bad("empty content")
    answer = Answer()
    for block in content:
        if not isinstance(block, dict):
            raise Bad("content block is not an object")
        if block.get("type") == "text":
            answer.text += str(block.get("text") or "")
        elif block.get("type") == "tool_use":
            answer.calls.append(ToolCall(str(block.get("name") or ""), _tool_input(block.get("input"))))
    return answer


def _tool_input(value: Any) -> Any:
    if not isinstance(value, dict):
        raise Bad("tool_use input is not an object")
    return value


DELTA_FOR_BLOCK = {
    "text": {"text_delta", "citations_delta"},
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
}


def claude_stream_answer(events: list[SSEEvent]) -> Answer:
    answer = Answer()
    state = "start"  # start -> message -> block -> message ... -> delta -> stop
    index = -1
    block: dict[str, Any] = {}
    partial = ""
    for ev in events:
        obj = _json(ev.data)
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise Bad(f"event is not a typed JSON object: {ev.data[:40]!r}")
        kind = obj["type"]
        if ev.event is not None and ev.event != kind:
            raise Bad(f"event name {ev.event} != type {kind}")
        if kind == "error":
            raise Bad(f"stream error: {error_message(obj) or 'error'}")
        if kind == "ping":
            continue
        if state == "stop":
            raise Bad(f"{kind} after message_stop")
        expected = {
            "start": {"message_start"},
            "message": {"content_block_start", "message_delta"},
            "block": {"content_block_delta", "content_block_stop"},
            "delta": {"message_stop"},
        }[state]
        if kind not in expected:
            raise Bad(f"{kind} where {'/'.join(sorted(expected))} expected")
        if kind == "message_start":
            if not isinstance(obj.get("message"), dict):
                raise Bad("message_start without message")
            state = "message"
        elif kind == "content_block_start":
            index += 1
            if obj.get("index") != index:
                raise Bad(f"block index {obj.get('index')} where {index} expected")
            block = obj.get("content_block") if isinstance(obj.get("content_block"), dict) else {}
            partial, state = "", "block"
            if block.get("type") == "text":
                answer.text += str(block.get("text") or "")
        elif kind == "content_block_delta":
            if obj.get("index") != index:
                raise Bad(f"delta for block {obj.get('index')} inside block {index}")
            delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
            allowed = DELTA_FOR_BLOCK.get(str(block.get("type")))
            if allowed is not None and delta.get("type") not in allowed:
                raise Bad(f"{delta.get('type')} in a {block.get('type')} block")
            if delta.get("type") == "text_delta":
                answer.text += str(delta.get("text") or "")
            elif delta.get("type") == "input_json_delta":
                partial += str(delta.get("partial_json") or "")
        elif kind == "content_block_stop":
            if obj.get("index") != index:
                raise Bad(f"stop for block {obj.get('index')} inside block {index}")
            if block.get("type") == "tool_use":
                if partial:
                    try:
                        value = json.loads(partial)
                    except ValueError:
                        raise Bad(f"input_json_delta not JSON: {partial[:40]!r}") from None
                else:
                    value = block.get("input", {})
                answer.calls.append(ToolCall(str(block.get("name") or ""), _tool_input(value)))
            state = "message"
        elif kind == "message_delta":
            delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
            if not delta.get("stop_reason"):
                raise Bad("message_delta without stop_reason")
            state = "delta"
        else:  # message_stop
            state = "stop"
    if state != "stop":
        raise Bad("stream ended before message_stop")
    if index < 0:
        raise Bad("no content blocks")
    return answer
