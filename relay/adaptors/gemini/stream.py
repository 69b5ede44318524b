"""Gemini `streamGenerateContent?alt=sse` -> IR stream events.

https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
Each SSE `data:` line is a whole GenerateContentResponse holding the next slice of candidate 0:
text and thought parts arrive piece by piece, a functionCall part arrives whole, the last chunk
carries `finishReason`, and `usageMetadata` (running totals) rides on the chunks. Memory stays
bounded: only the open part's kind, counters and the latest usage are kept.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from ... import ir
from ...protocols.sse import SSEFramingError, SSESplitter, event_data
from .wire import finish_reason, read_parts, usage_from_gemini

__all__ = ["GeminiStreamDecoder"]


class GeminiStreamDecoder:
    def __init__(self, model: str = "") -> None:
        self._splitter = SSESplitter()
        self._model = model
        self._response_id: str | None = None
        self._started = False
        self._ended = False
        self._index = -1  # index of the last part started
        self._open: str | None = None  # kind of the part still open: "text" | "reasoning"
        self._calls = 0
        self._finish: Any = None
        self._blocked = False
        self._usage_meta: dict[str, Any] | None = None

    # -- interface ------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[ir.StreamEvent]:
        if self._ended:
            return []
        try:
            frames = self._splitter.feed(data)
        except SSEFramingError as exc:
            return self._fail(str(exc))
        events: list[ir.StreamEvent] = []
        for frame in frames:
            events += self._frame(frame)
            if self._ended:
                break
        return events

    def close(self) -> list[ir.StreamEvent]:
        if self._ended:
            return []
        events: list[ir.StreamEvent] = []
        rest = self._splitter.close()
        if rest:
            events += self._frame(rest)
            if self._ended:
                return events
        if self._finish is None and not self._blocked:
            return events + self._fail("the Gemini stream ended before its finishReason")
        return events + self._end()

    # -- one SSE event ----------------------------------------------------------------------

    def _frame(self, frame: bytes) -> list[ir.StreamEvent]:
        data = event_data(frame)
        if data is None or not data.strip():
            return []  # comments, keep-alives
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail("the Gemini stream sent an event that is not JSON")
        if not isinstance(chunk, dict):
            return self._fail("the Gemini stream sent an event that is not an object")
        error = chunk.get("error")
        if isinstance(error, dict):  # Google's error shape, sent in-band mid-stream
            code = error.get("code")
            return self._fail(
                str(error.get("message") or "the upstream reported an error"),
                type=str(error.get("status") or "server_error"),
                code=str(code) if code is not None else None,
            )
        return self._chunk(chunk)

    def _chunk(self, chunk: dict[str, Any]) -> list[ir.StreamEvent]:
        events: list[ir.StreamEvent] = []
        meta = chunk.get("usageMetadata")
        if isinstance(meta, dict):
            self._usage_meta = meta
        if not self._started:
            self._started = True
            rid = chunk.get("responseId")
            self._response_id = rid if isinstance(rid, str) and rid else None
            prompt = ir.Usage(prompt_tokens=usage_from_gemini(meta)[0].prompt_tokens) if isinstance(meta, dict) else None
            events.append(ir.StreamStart(
                id=self._response_id or f"gemini-{uuid.uuid4().hex}",
                model=str(chunk.get("modelVersion") or self._model),
                created=int(time.time()),
                usage=prompt,
            ))
        candidates = chunk.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict) else None
        if candidate is None:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._blocked = True  # the prompt was blocked: no candidate will come
                return events + self._end()
            return events
        content = candidate.get("content")
        parts = read_parts(content.get("parts") if isinstance(content, dict) else None, self._response_id, self._calls)
        for part in parts:
            events += self._part(part)
        if candidate.get("finishReason"):
            self._finish = candidate["finishReason"]
            events += self._close_open()
        if self._finish is not None and isinstance(meta, dict):
            events += self._end()  # the closing chunk carries the final usage
        return events

    def _part(self, part: ir.Part) -> list[ir.StreamEvent]:
        events: list[ir.StreamEvent] = []
        if isinstance(part, ir.TextPart):
            events += self._ensure_open("text")
            events.append(ir.TextDelta(self._index, part.text))
        elif isinstance(part, ir.ReasoningPart):
            if part.text or self._open != "reasoning":
                events += self._ensure_open("reasoning")
            events.append(ir.ReasoningDelta(self._index, text=part.text, signature=part.signature))
        elif isinstance(part, ir.ToolCallPart):
            events += self._close_open()
            self._index += 1
            self._calls += 1
            events += [
                ir.PartStart(self._index, "tool_call", tool_call_id=part.id, tool_name=part.name),
                ir.ToolArgsDelta(self._index, part.arguments),
                ir.PartStop(self._index),
            ]
        return events

    # -- part bookkeeping -------------------------------------------------------------------

    def _ensure_open(self, kind: str) -> list[ir.StreamEvent]:
        if self._open == kind:
            return []
        events = self._close_open()
        self._index += 1
        self._open = kind
        events.append(ir.PartStart(self._index, "text" if kind == "text" else "reasoning"))
        return events

    def _close_open(self) -> list[ir.StreamEvent]:
        if self._open is None:
            return []
        self._open = None
        return [ir.PartStop(self._index)]

    def _end(self) -> list[ir.StreamEvent]:
        events = self._close_open()
        self._ended = True
        usage, thoughts = usage_from_gemini(self._usage_meta)
        reason: ir.StopReason = "content_filter" if self._blocked else finish_reason(self._finish, self._calls > 0)
        events.append(ir.StreamEnd(stop_reason=reason, usage=usage if self._usage_meta else None, reasoning_tokens=thoughts))
        return events

    def _fail(self, message: str, type: str = "server_error", code: str | None = None) -> list[ir.StreamEvent]:
        self._ended = True
        return [ir.StreamError(message=message, type=type, code=code)]
