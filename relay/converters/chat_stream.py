"""OpenAI Chat Completions streams <-> IR stream events, plus the wire helpers shared with
`relay.converters.chat` (usage, finish reasons, ids). Pure: no Django, no I/O.

Chunk format: https://platform.openai.com/docs/api-reference/chat/streaming
Every chunk is `data: {"object": "chat.completion.chunk", "choices": [{"delta": ...}]}`; the
stream ends with `data: [DONE]`. With `stream_options.include_usage` every chunk carries
`"usage": null` and one extra chunk with `"choices": []` carries the usage, after the chunk with
`finish_reason`.

Memory is bounded: the decoder keeps ids, indexes and the tool-call map (one small entry per
tool call), never the text; the SSE splitter caps a single event's size.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from relay.ir import (
    PartStart,
    PartStop,
    ReasoningDelta,
    Request,
    StopReason,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolArgsDelta,
    Usage,
)
from relay.protocols.sse import SSEFramingError, SSESplitter, event_data

# ------------------------------------------------------------------------------ shared helpers

# The keys of a delta that carries only text (the role repeats on some servers' chunks).
_PLAIN_DELTA_KEYS = frozenset(("content", "role"))

_FINISH_TO_IR: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # deprecated functions API
    "content_filter": "content_filter",
    # Non-OpenAI spellings seen from OpenAI-compatible servers.
    "max_tokens": "length",
    "model_length": "length",
    "eos": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "error": "error",
}

_FINISH_FROM_IR: dict[str, str] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    # Anthropic's "refusal" is its safety classifier stopping the answer: content_filter is the
    # closest Chat reason. pause_turn / error have no Chat reason; "stop" is what clients expect.
    "refusal": "content_filter",
    "pause": "stop",
    "error": "stop",
}


def finish_to_ir(reason: Any, had_tool_calls: bool) -> StopReason:
    """A Chat finish_reason as an IR stop reason. Some OpenAI-compatible servers (Ollama, some
    Gemini/vLLM versions) answer "stop" while returning tool calls; callers in other formats only
    run tools on a tool stop reason, so tool calls win."""
    mapped = _FINISH_TO_IR.get(reason, "stop") if isinstance(reason, str) else "stop"
    if had_tool_calls and mapped == "stop":
        return "tool_calls"
    return mapped


def finish_from_ir(stop_reason: str) -> str:
    return _FINISH_FROM_IR.get(stop_reason, "stop")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def _choice_zero(choices: list[Any]) -> dict[str, Any] | None:
    """Choice 0 of a chunk (nearly always the first entry: a plain loop returns at once)."""
    for choice in choices:
        if isinstance(choice, dict) and _int(choice.get("index")) == 0:
            return choice
    return None


def usage_to_ir(usage: dict[str, Any]) -> tuple[Usage, int]:
    """Chat `usage` -> (IR usage, reasoning tokens). prompt_tokens already includes cached tokens
    (OpenAI convention, same as the IR). DeepSeek reports cache hits as top-level
    `prompt_cache_hit_tokens` (https://api-docs.deepseek.com/guides/kv_cache); OpenRouter and the
    current SDK have `prompt_tokens_details.cache_write_tokens`."""
    prompt_details = usage.get("prompt_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = usage.get("completion_tokens_details")
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    cached = _int(prompt_details.get("cached_tokens")) or _int(usage.get("prompt_cache_hit_tokens"))
    return (
        Usage(
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            cached_tokens=cached,
            cache_write_tokens=_int(prompt_details.get("cache_write_tokens")),
        ),
        _int(completion_details.get("reasoning_tokens")),
    )


def usage_from_ir(usage: Usage | None, reasoning_tokens: int = 0) -> dict[str, Any]:
    """IR usage -> Chat `usage` with details. Chat has one cache-write count: 5-minute and
    1-hour writes are summed into it (only sent when non-zero, as OpenRouter does)."""
    usage = usage or Usage()
    prompt_details: dict[str, Any] = {"cached_tokens": usage.cached_tokens, "audio_tokens": 0}
    cache_write = usage.cache_write_tokens + usage.cache_write_1h_tokens
    if cache_write:
        prompt_details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_id(response_id: str) -> str:
    """Chat completion ids look like `chatcmpl-...`; clients sometimes key on the prefix."""
    if not response_id:
        return f"chatcmpl-{uuid.uuid4().hex}"
    return response_id if response_id.startswith("chatcmpl-") else f"chatcmpl-{response_id}"


def dumps_arguments(value: Any) -> str:
    """Tool arguments as JSON text. Some OpenAI-compatible servers send an object, not a string."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()


def reasoning_text(obj: dict[str, Any]) -> str:
    """Reasoning text of a message or delta: DeepSeek's `reasoning_content`, else OpenRouter's
    `reasoning` (https://openrouter.ai/docs/use-cases/reasoning-tokens). Some servers send both
    with the same text, so one is taken, never both."""
    for key in ("reasoning_content", "reasoning"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


# ------------------------------------------------------------------------------ decoder


@dataclass(slots=True)
class _ToolEntry:
    index: int  # IR part index
    call_id: str


class StreamDecoder:
    """Upstream Chat SSE bytes -> IR stream events. Only choice 0 is read (n>1 streams are
    passed through by the relay, never converted)."""

    def __init__(self) -> None:
        self._splitter = SSESplitter()
        self.remember_parsed = False  # PassthroughStream reads each event's JSON off `parsed`, not parsing twice
        self.parsed: tuple[bytes, Any] | None = None
        self._started = False
        self._done = False
        self._stream_id = ""
        self._next_index = 0
        self._open: int | None = None
        self._open_kind: str | None = None
        self._tools: dict[Any, _ToolEntry] = {}
        self._current_tool: Any = None
        self._had_tools = False
        self._finish: str | None = None
        self._finished = False
        self._stop_sequence: str | None = None
        self._usage: Usage | None = None
        self._reasoning_tokens = 0

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._done:
            return out
        try:
            events = self._splitter.feed(data)
        except SSEFramingError as exc:
            self._done = True
            return [StreamError(str(exc))]
        for event in events:
            self._event(event, out)
        return out

    def feed_event(self, event: bytes) -> list[StreamEvent]:
        """One SSE event already split off (the pass-through splits once for itself and us)."""
        out: list[StreamEvent] = []
        self._event(event, out)
        return out

    def feed_chunk(self, event: bytes, chunk: Any) -> list[StreamEvent]:
        """One SSE event whose data the caller has parsed already (PassthroughStream: not twice)."""
        out: list[StreamEvent] = []
        if not self._done:
            self._chunk(event, chunk, out)
        return out

    def close(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        rest = self._splitter.close()
        if rest:
            self._event(rest, out)
        if self._done:
            return out
        if self._finished:
            # Finished but no [DONE] (some compatible servers just close the connection).
            self._end(out)
        else:
            self._done = True
            out.append(StreamError("upstream stream ended early"))
        return out

    # -- internals

    def _event(self, raw: bytes, out: list[StreamEvent]) -> None:
        if self._done:
            return
        data = event_data(raw)
        if data is None:
            return
        data = data.strip()
        if data == b"[DONE]":
            self._end(out)
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return  # garbage lines (keep-alives, proxies' banners) are skipped
        self._chunk(raw, chunk, out)

    def _chunk(self, raw: bytes, chunk: Any, out: list[StreamEvent]) -> None:
        if self.remember_parsed:
            self.parsed = (raw, chunk)
        if not isinstance(chunk, dict):
            return
        text = self.plain_text(chunk)
        if text is not None:
            if text:
                out.append(TextDelta(self._open, text))  # type: ignore[arg-type]  # a text part is open
            return
        error = chunk.get("error")
        if error and not chunk.get("choices"):
            self._done = True
            out.append(_stream_error(error))
            return
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if not self._started and (choices or isinstance(usage, dict)):
            # Azure OpenAI opens with a `choices: []` chunk holding only prompt_filter_results
            # and empty id/model: the start comes from the first chunk with content or usage.
            self._start(chunk, out)
        if isinstance(usage, dict):
            self._usage, self._reasoning_tokens = usage_to_ir(usage)
        if isinstance(choices, list) and choices:
            choice = _choice_zero(choices)
            if choice is not None:
                self._choice(choice, out)
        elif self._finished and isinstance(usage, dict):
            # The include_usage chunk, after finish_reason: the stream's content is complete.
            self._end(out)

    def plain_text(self, chunk: dict[str, Any]) -> str | None:
        """The text of the usual chunk, read the short way: the stream goes on, a text part is
        open, and the chunk has one choice (index 0) whose delta holds content (and role) only,
        no finish reason and no usage. Such a chunk changes nothing here but adds its text. None
        for any other chunk, which takes the general path. This is most chunks of a text answer,
        and reading them was most of a pass-through stream's CPU (bench/RESULTS.md)."""
        if self._open_kind != "text" or self._done or chunk.get("usage") is not None:
            return None
        choices = chunk.get("choices")
        if type(choices) is not list or len(choices) != 1:
            return None
        choice = choices[0]
        if type(choice) is not dict or choice.get("finish_reason") is not None or choice.get("index", 0) != 0:
            return None
        delta = choice.get("delta")
        if type(delta) is not dict or not delta.keys() <= _PLAIN_DELTA_KEYS:
            return None
        text = delta.get("content")
        if text is None:
            return ""
        return text if type(text) is str else None

    def _start(self, chunk: dict[str, Any], out: list[StreamEvent]) -> None:
        self._started = True
        self._stream_id = str(chunk.get("id") or "")
        model = str(chunk.get("model") or "")
        out.append(StreamStart(id=self._stream_id, model=model, created=_int(chunk.get("created"))))

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = reasoning_text(delta)
            if reasoning:
                index = self._ensure("reasoning", out)
                out.append(ReasoningDelta(index, reasoning))
            for key in ("content", "refusal"):
                # The IR stream has no refusal event: refusal text is streamed as text so the
                # caller still sees it (the non-stream path keeps Response.refusal).
                text = delta.get(key)
                if isinstance(text, str) and text:
                    index = self._ensure("text", out)
                    out.append(TextDelta(index, text))
            tool_calls = delta.get("tool_calls")
            if isinstance(tool_calls, list):
                for position, call in enumerate(tool_calls):
                    if isinstance(call, dict):
                        self._tool_delta(call, position, out)
            function_call = delta.get("function_call")
            if isinstance(function_call, dict):  # deprecated functions API: one call, no id
                self._tool_delta({"index": "function_call", "function": function_call}, 0, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._close_part(out)
            self._finished = True
            self._finish = finish
            # vLLM reports the matched stop string as `stop_reason`.
            stop_reason = choice.get("stop_reason")
            if isinstance(stop_reason, str):
                self._stop_sequence = stop_reason

    def _tool_delta(self, call: dict[str, Any], position: int, out: list[StreamEvent]) -> None:
        function = call.get("function")
        if not isinstance(function, dict):
            custom = call.get("custom")
            function = (
                {"name": custom.get("name"), "arguments": custom.get("input")} if isinstance(custom, dict) else {}
            )
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        name = function.get("name") if isinstance(function.get("name"), str) else None
        arguments = dumps_arguments(function.get("arguments"))

        key = call.get("index")
        if isinstance(key, bool) or not isinstance(key, int | str):
            # No index (some compatible servers): a new id is a new call, else the current one.
            if call_id is not None:
                key = next((k for k, e in self._tools.items() if e.call_id == call_id), ("id", call_id))
            else:
                key = self._current_tool if self._current_tool is not None else position
        entry = self._tools.get(key)
        if entry is not None and call_id is not None and call_id != entry.call_id:
            entry = None  # a server that reuses index 0 for every call, with distinct ids
        if entry is None:
            self._close_part(out)
            index = self._next_index
            self._next_index += 1
            entry = _ToolEntry(index, call_id or f"call_{self._stream_id or 'x'}_{index}")
            self._tools[key] = entry
            self._had_tools = True
            self._open, self._open_kind = index, "tool_call"
            out.append(PartStart(index, "tool_call", tool_call_id=entry.call_id, tool_name=name or ""))
        # A late delta for a call whose part was already stopped keeps that call's index rather
        # than being dropped; well-behaved servers never interleave calls.
        self._current_tool = key
        if arguments:
            out.append(ToolArgsDelta(entry.index, arguments))

    def _ensure(self, kind: str, out: list[StreamEvent]) -> int:
        if self._open is not None and self._open_kind == kind:
            return self._open
        self._close_part(out)
        index = self._next_index
        self._next_index += 1
        self._open, self._open_kind = index, kind
        out.append(PartStart(index, kind))  # type: ignore[arg-type]
        return index

    def _close_part(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(PartStop(self._open))
            self._open = self._open_kind = None

    def _end(self, out: list[StreamEvent]) -> None:
        if self._done:
            return
        if not self._started:
            self._start({}, out)
        self._close_part(out)
        self._done = True
        out.append(
            StreamEnd(
                stop_reason=finish_to_ir(self._finish, self._had_tools),
                usage=self._usage,
                stop_sequence=self._stop_sequence,
                reasoning_tokens=self._reasoning_tokens,
            )
        )


def _stream_error(error: Any) -> StreamError:
    if isinstance(error, dict):
        code = error.get("code")
        return StreamError(
            message=str(error.get("message") or "upstream error"),
            type=str(error.get("type") or "server_error"),
            code=str(code) if code is not None else None,
        )
    return StreamError(message=str(error))


# ------------------------------------------------------------------------------ encoder


class StreamEncoder:
    """IR stream events -> Chat SSE chunks, shaped as the API sends them. Id, created and model
    are constant across the stream."""

    def __init__(self, request: Request, response_id: str, model: str, created: int) -> None:
        self._id = chat_id(response_id)
        self._model = model
        self._created = created
        self._include_usage = request.include_usage
        self._reasoning_field = request.reasoning_format or "reasoning_content"
        self._started = False
        self._ended = False
        self._tool_index: dict[int, int] = {}  # IR part index -> Chat tool_calls[].index
        self._reasoning_parts = 0
        self._reasoning_separator = False

    def encode(self, event: StreamEvent) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, StreamError):
            self._ended = True
            return self.error(event.message, event.type, event.code)
        out = b""
        if not self._started:
            self._started = True
            out += self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, TextDelta):
            if event.text:
                out += self._chunk({"content": event.text})
        elif isinstance(event, ReasoningDelta):
            # Signatures and encrypted reasoning have no place in Chat: dropped.
            if event.text:
                text = event.text
                if self._reasoning_separator:
                    text, self._reasoning_separator = "\n\n" + text, False
                out += self._chunk({self._reasoning_field: text})
        elif isinstance(event, ToolArgsDelta):
            if event.index not in self._tool_index:
                out += self._tool_start(event.index, f"call_{event.index}", "")
            if event.arguments:
                call = {"index": self._tool_index[event.index], "function": {"arguments": event.arguments}}
                out += self._chunk({"tool_calls": [call]})
        elif isinstance(event, PartStart):
            if event.kind == "tool_call":
                out += self._tool_start(event.index, event.tool_call_id or f"call_{event.index}", event.tool_name or "")
            elif event.kind == "reasoning":
                # Several reasoning blocks (interleaved thinking) read as paragraphs in one field.
                self._reasoning_separator = self._reasoning_parts > 0
                self._reasoning_parts += 1
        elif isinstance(event, StreamEnd):
            self._ended = True
            out += self._chunk({}, finish_from_ir(event.stop_reason))
            if self._include_usage:
                out += self._frame(self._envelope([], usage_from_ir(event.usage, event.reasoning_tokens)))
        # StreamStart (already answered by the role chunk) and PartStop produce nothing.
        return out

    def error(self, message: str, type: str, code: str | None) -> bytes:
        return self._frame({"error": {"message": message, "type": type, "param": None, "code": code}})

    def close(self) -> bytes:
        return b"data: [DONE]\n\n"

    def _tool_start(self, index: int, call_id: str, name: str) -> bytes:
        tool_index = len(self._tool_index)
        self._tool_index[index] = tool_index
        call = {"index": tool_index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return self._chunk({"tool_calls": [call]})

    def _envelope(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = usage
        return chunk

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._frame(self._envelope([choice], None))

    @staticmethod
    def _frame(obj: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(obj) + b"\n\n"
